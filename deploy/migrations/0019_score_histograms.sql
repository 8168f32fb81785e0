-- Score distributions (issue 13) from the conversation stats counters of 0018: one histogram per
-- judge score (0–1 in ten buckets, 1–5 in four), so GET /v1/conversations/stats and the dashboard
-- stay O(counters) instead of scanning the tenant's rows (score_queries.REGISTER_HISTOGRAMS_SQL).
SELECT conversation_stats_add_histogram('coherence_score', 'coherence_score', 0, 1, 10);
SELECT conversation_stats_add_histogram('relevance_score', 'relevance_score', 0, 1, 10);
SELECT conversation_stats_add_histogram('completeness_score', 'completeness_score', 0, 1, 10);
SELECT conversation_stats_add_histogram('quality_overall', 'quality_overall', 0, 1, 10);
SELECT conversation_stats_add_histogram('empathy_score', 'empathy_score', 1, 5, 4);
SELECT conversation_stats_add_histogram('clarity_score', 'clarity_score', 1, 5, 4);
SELECT conversation_stats_add_histogram('appropriateness_score', 'appropriateness_score', 1, 5, 4);
SELECT conversation_stats_add_histogram('brand_voice_score', 'brand_voice_score', 1, 5, 4);
