"""Logs are JSON lines with request/job/owner ids, and never show keys, prompts or signed URLs
at info level."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from shared.logging import REDACTED, _redact, scrub_text
from shared.security import mint_key
from shared.storage import ObjectStore
from tests.support.servers import ROOT

API_KEY = mint_key().plaintext
CLAUDE_KEY = "sk-ant-api03-" + "A1b2C3d4" * 6
S3_URL = (
    "https://s3.example.com/bucket/exports/x.jsonl?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIA%2F20250101&X-Amz-Signature=0123456789abcdef"
)
LOCAL_URL = "http://127.0.0.1:8000/files/exports/x.jsonl?expires=1767225600&signature=deadbeef"


def _run(level: str, **fields: Any) -> dict[str, Any]:
    return dict(_redact(None, level, {"event": "test.event", "level": level, **fields}))


def test_secrets_are_masked_at_every_level() -> None:
    for level in ("debug", "info", "warning", "error"):
        out = _run(level, api_key=API_KEY, authorization=f"Bearer {API_KEY}", password="hunter2",
                   anthropic_api_key=CLAUDE_KEY, s3_secret_access_key="s3cr3t",
                   headers={"x-api-key": CLAUDE_KEY, "Accept": "json"})  # fmt: skip
        blob = json.dumps(out)
        for secret in (API_KEY, CLAUDE_KEY, "hunter2", "s3cr3t"):
            assert secret not in blob, (level, secret)
        assert out["headers"] == {"x-api-key": REDACTED, "Accept": "json"}


def test_prompts_responses_and_urls_only_at_debug() -> None:
    fields = {"prompt": "my client's divorce", "system_prompt": "You are…",
              "messages": [{"role": "user", "content": "hi"}], "response_text": "Sure!",
              "download_url": LOCAL_URL, "url": S3_URL}  # fmt: skip
    info = _run("info", **fields)
    assert all(info[name] == REDACTED for name in fields)
    debug = _run("debug", **fields)
    assert debug["prompt"] == "my client's divorce"
    assert debug["messages"] == [{"role": "user", "content": "hi"}]
    # Even at debug the link's credential (its query string) is not shown.
    assert debug["url"].endswith("?" + REDACTED)


def test_secrets_inside_free_text_are_scrubbed() -> None:
    text = (
        f"calling with {API_KEY} and {CLAUDE_KEY}; db postgresql://app:pa55@db:5432/x; "
        f"redis redis://:r3dis@cache:6379/0; link {S3_URL} and {LOCAL_URL} done"
    )
    scrubbed = scrub_text(text)
    for secret in (API_KEY, CLAUDE_KEY, "pa55", "r3dis", "X-Amz-Signature", "signature=dead"):
        assert secret not in scrubbed
    assert API_KEY[:11] in scrubbed  # the visible key prefix stays, to find the key
    assert "https://s3.example.com/bucket/exports/x.jsonl?" in scrubbed
    out = _run("info", event=f"failed for {API_KEY}", error=f"boom at {S3_URL}",
               nested={"deeper": [f"see {LOCAL_URL}"]})  # fmt: skip
    assert API_KEY not in out["event"]
    assert "Signature" not in out["error"]
    assert "signature" not in json.dumps(out["nested"])


def test_counts_ids_and_keys_of_objects_stay_readable() -> None:
    fields = {"input_tokens": 1500, "output_tokens": 2000, "max_tokens": 4096, "tokens": 3,
              "object_key": "conversations/a/b/conversation.json.gz", "key_prefix": "cf_12345678",
              "owner_id": "7d0c", "request_id": "r-1", "job_id": "gen:b:1"}  # fmt: skip
    assert _run("info", **fields) == {"event": "test.event", "level": "info", **fields}


async def test_real_signed_links_are_scrubbed(storage: ObjectStore) -> None:
    url = await storage.presign_get("exports/owner/x.jsonl", expires_in=60, filename="x.jsonl")
    scrubbed = scrub_text(f"download ready at {url}")
    assert "?" in url
    assert url.split("?", 1)[1] not in scrubbed
    assert scrubbed.endswith("?" + REDACTED)


_SCRIPT = """
import logging, structlog
from shared.settings import Settings
from shared.logging import bound_context, configure_logging, get_logger
configure_logging(Settings(environment="production", log_level="INFO", log_format="auto"))
log = get_logger("demo")
with bound_context(request_id="req-1", job_id="gen:b:0", owner_id="owner-1"):
    log.info("demo.call", api_key=KEY, prompt="secret prompt", url=URL, input_tokens=12)
    log.debug("demo.hidden", prompt="debug only")
    try:
        raise RuntimeError("upload failed for " + URL)
    except RuntimeError:
        log.exception("demo.failed")
    logging.getLogger("arq.worker").warning("job %s used %s", "gen:b:0", KEY)
    try:
        raise ValueError("cannot reach postgresql://app:pa55@db/x")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("startup failed")
"""


def test_every_process_logs_json_lines_with_context() -> None:
    script = f"KEY = {API_KEY!r}\nURL = {S3_URL!r}\n" + _SCRIPT
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert [line["event"] for line in lines] == [
        "demo.call", "demo.failed", "job gen:b:0 used " + API_KEY[:11] + "_" + REDACTED,
        "startup failed",
    ]  # fmt: skip
    for line in lines:
        assert (line["request_id"], line["job_id"], line["owner_id"]) == ("req-1", "gen:b:0",
                                                                           "owner-1")  # fmt: skip
        assert line["level"] in {"info", "warning", "error"}
        assert line["timestamp"]
    assert lines[0]["input_tokens"] == 12
    assert lines[2]["logger"] == "arq.worker"
    assert "Traceback" in lines[3]["exception"]
    for secret in (API_KEY, "secret prompt", "X-Amz-Signature", "pa55", "debug only"):
        assert secret not in done.stderr, secret


@pytest.mark.parametrize("name", ["api_key", "x-api-key", "Authorization", "anthropic_api_key"])
def test_secret_field_names_in_any_spelling(name: str) -> None:
    assert _run("info", **{name: "value"})[name] == REDACTED
