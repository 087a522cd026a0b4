"""Pass pipelines: kiln-import-cleanup, kiln-graph, kiln-lower."""
