"""The retention team portal: sign-in, target-list downloads, outcome uploads, reports, audit.

`create_app()` in `app.py` builds the FastAPI app; `crm-warehouse serve` runs it with uvicorn and
`crm-warehouse users ...` manages its users. See docs/portal.md.
"""
