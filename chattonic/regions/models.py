"""No tables of its own: the regions' identity rows are the tenancy's (chattonic.tenancy).

The module exists so that ``post_migrate`` is sent for this app (``apps.py``)."""
