"""`python -m privacy_audit`: the command line."""

from privacy_audit._entry import main

main()
