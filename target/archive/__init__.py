"""Archives (shards): format detection, reading members, indexes, appends and streaming writers."""
