"""proxy: a stateless gateway. Routes object requests to targets, owns cluster metadata when
primary, merges listings, orchestrates jobs. Stores no object data."""
