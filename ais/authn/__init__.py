"""AuthN: the authentication service of a set of clusters (users, roles, registered clusters,
JWT tokens and their revocation). Runs as its own process (`aisauthn`); see README.md."""
