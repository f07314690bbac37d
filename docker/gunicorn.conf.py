"""gunicorn configuration for nmr: ``gunicorn -c docker/gunicorn.conf.py nmr.wsgi:app``.

The image runs ``nmr serve``, which applies the same settings in code; this file is for
operators who start gunicorn themselves. Both take every value from ``nmr.cli.gunicorn_options``
(configured by ``NMR_CONFIG`` and ``NMR_*`` variables), so the two cannot drift apart.

Why these settings (LevelDB decides most of them):

* ``workers = 1`` with ``worker_class = "nmr.worker.NmrWorker"`` (gthread with less work per
  request, see nmr/worker.py) and ``threads = server.threads``: LevelDB
  lets one process open a database (google/leveldb doc/index.md, "Concurrency"). A second
  worker would fail to take the lock, so concurrency comes from threads in one worker.
* ``preload_app = False``: the app, and with it the database, is built in the worker after the
  fork. Preloading would open LevelDB in the master, which then holds the lock the worker needs.
* ``timeout``: for gthread, a heartbeat of the worker's event loop, not a request deadline:
  long uploads and downloads are never cut by it. A stalled body is cut by
  ``server.read_timeout`` (408).
* ``graceful_timeout``: after SIGTERM the worker stops accepting and finishes the requests in
  flight, a publish included, for up to this many seconds. Give ``docker stop -t`` (or
  ``stop_grace_period``) a few seconds more than this.
* ``accesslog = None``, ``logger_class = "nmr.worker.QuietAccessLogger"``: nmr logs each
  request itself (``nmr.access``), with the GitHub login and never a token, so gunicorn does
  not build an access line of its own per request.
"""

from nmr.cli import gunicorn_options
from nmr.config import load_config

_options = gunicorn_options(load_config(), None)

bind = _options["bind"]
workers = _options["workers"]
worker_class = _options["worker_class"]
logger_class = _options["logger_class"]
threads = _options["threads"]
timeout = _options["timeout"]
graceful_timeout = _options["graceful_timeout"]
keepalive = _options["keepalive"]
preload_app = _options["preload_app"]
accesslog = _options["accesslog"]
errorlog = _options["errorlog"]
loglevel = _options["loglevel"]
logconfig_dict = _options["logconfig_dict"]
proc_name = _options["proc_name"]
worker_exit = _options["worker_exit"]
worker_tmp_dir = _options["worker_tmp_dir"]
control_socket_disable = _options["control_socket_disable"]  # gunicorn < 25 ignores unknown names here
