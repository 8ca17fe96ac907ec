"""gunicorn defaults for the admin API (``pulp-registry api`` reads them; ``gunicorn -c`` can too).

``bind`` and ``workers`` come from the settings (``api_bind``, ``api_workers``)
or the command line. Workers load the app after they fork (no ``preload_app``),
so every worker opens its own MongoDB client: pymongo clients must not cross a fork.
"""

worker_class = "gthread"
#: Threads per worker process; uploads block a thread while bytes arrive.
threads = 4
#: Seconds a request may take; generous, because a layer upload can be gigabytes.
timeout = 600
graceful_timeout = 30
keepalive = 5
preload_app = False
#: gunicorn limits header sizes only; request bodies (blobs) are unlimited.
limit_request_line = 8190
limit_request_field_size = 16380
accesslog = "-"
errorlog = "-"
#: No control socket. gunicorn 25.1+ opens one by default in $XDG_RUNTIME_DIR or $HOME/.gunicorn/,
#: one path for every instance of the user: in the images $HOME is the data volume, and two
#: processes would fight over one socket. Older gunicorn does not know the name and ignores it.
control_socket_disable = True
