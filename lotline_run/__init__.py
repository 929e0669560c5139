"""The one-command runner behind `make run`.

`python -m lotline_run` starts whatever the environment does not point at (an embedded PostgreSQL
when DATABASE_URL is unset, the Temporal dev server when TEMPORAL_ADDRESS is unset), applies the
migrations, loads the demo data on first start, then runs the worker and the web app as child
processes until Ctrl-C. `python -m lotline_run verify-audit` checks the audit trail.
"""
