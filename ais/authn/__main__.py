"""`python -m ais.authn`: the AuthN service (see main.py)."""

from ais.authn.main import main

main()
