"""The forward stage: ``client.py`` holds the pooled keep-alive upstream client (UpstreamPool,
UpstreamResponse, UpstreamError) the data path sends every request through."""
