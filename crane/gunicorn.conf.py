"""gunicorn defaults for Crane (``crane`` reads them; ``gunicorn -c crane/gunicorn.conf.py`` can too).

``bind``, ``workers``, ``threads`` and ``timeout`` come from Crane's settings or
the command line. The published metadata is loaded once in the master
(``preload_app``), so an unreadable tree stops start-up with its message and
workers share the loaded pages; each worker then follows new publishes itself.
"""

worker_class = "gthread"
threads = 4
#: A blob download to a slow client may take long; manifests answer in microseconds.
timeout = 120
graceful_timeout = 30
keepalive = 5
preload_app = True
# Blob GETs go through the kernel's sendfile: gunicorn uses it for wsgi.file_wrapper responses
# unless ``sendfile`` is set. Do not set it here: in gunicorn *any* value of ``sendfile``
# (even True) means --no-sendfile.
limit_request_line = 8190
#: No access log by default: it costs throughput; ``access_log: true`` turns it on.
accesslog = None
errorlog = "-"
proc_name = "crane"
