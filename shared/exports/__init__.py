"""Export logic the API and the exporter worker share: plans, formats and the render stream."""
