"""WSGI entry point: ``gunicorn -c docker/gunicorn.conf.py nmr.wsgi:app`` (config from ``NMR_CONFIG``, ``NMR_*``).

Import it only in the serving process (gunicorn's worker, ``preload_app = False``): building
the app opens the LevelDB database, which one process may hold.
"""

from nmr.app import create_app
from nmr.config import load_config
from nmr.logs import configure_logging

config = load_config()
configure_logging(config)
app = create_app(config)
