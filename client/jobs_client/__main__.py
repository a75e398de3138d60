"""`python -m jobs_client`: the command line."""

from .cli import main

main()
