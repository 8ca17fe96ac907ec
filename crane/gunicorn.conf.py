"""gunicorn defaults for Crane (``crane`` reads them; ``gunicorn -c crane/gunicorn.conf.py`` can too).

``bind``, ``workers``, ``threads`` and ``timeout`` come from Crane's settings or
the command line. The published metadata is loaded once in the master
(``preload_app``), so an unreadable tree stops start-up with its message and
workers share the loaded pages; each worker then follows new publishes itself.
"""

# gthread: blob downloads to slow clients hold a thread each, not the worker. Measured on 2 cores
# (manifest GET, keep-alive, 1 worker): ~3,200 req/s with 4 threads, ~5,000 with 1 thread, and
# ~7,500 with ``worker_class = "gevent"`` (needs the gevent package; sendfile stays cooperative).
# Threads of one worker pay for GIL hand-offs, so more workers beat more threads for throughput;
# ``threads`` comes from Crane's settings (``threads``, ``--threads``), this value is the fallback.
worker_class = "gthread"
threads = 4
#: A blob download to a slow client may take long; manifests answer in microseconds.
timeout = 120
graceful_timeout = 30
keepalive = 5
preload_app = True
# Each worker listens on its own SO_REUSEPORT socket (gunicorn then opens none in the master), so
# the kernel spreads new connections evenly. On one shared socket the first worker to wake takes
# them, and a client with a few keep-alive connections could land on one worker: the benchmark saw
# half the throughput in such rounds. Crane always binds TCP (``bind`` is HOST:PORT).
reuse_port = True
# Blob GETs go through the kernel's sendfile: gunicorn uses it for wsgi.file_wrapper responses
# unless ``sendfile`` is set. Do not set it here: in gunicorn *any* value of ``sendfile``
# (even True) means --no-sendfile.
limit_request_line = 8190
#: No access log by default: it costs throughput; ``access_log: true`` turns it on.
accesslog = None
errorlog = "-"
proc_name = "crane"
#: No control socket. gunicorn 25.1+ opens one by default in $XDG_RUNTIME_DIR or $HOME/.gunicorn/,
#: one path for every instance of the user: in the images $HOME is the data volume, and two
#: processes would fight over one socket. Older gunicorn does not know the name and ignores it.
control_socket_disable = True
