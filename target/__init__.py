"""target: a storage node. Holds objects on local mountpaths and serves them."""
