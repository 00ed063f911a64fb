"""Serving WSGI apps on loopback ports: cheroot for RWS/RCS/WebDAV, werkzeug for moto (S3)."""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Any

from cheroot import wsgi

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def pick_port(preferred: int | None) -> int:
    """``preferred`` when it is free (a restart keeps its URLs), else any free port."""
    if preferred and _port_free(preferred):
        return preferred
    return free_port()


class CherootServer:
    """One cheroot WSGI server in a daemon thread."""

    def __init__(self, app: Any, port: int | None = None, *, threads: int = 16, name: str = "sandbox"):
        self.port = pick_port(port)
        self.server = wsgi.Server((LOOPBACK, self.port), app, numthreads=threads, server_name=name,
                                  timeout=30, shutdown_timeout=2)
        self.server.prepare()
        self.port = self.server.bind_addr[1]
        self.thread = threading.Thread(target=self.server.serve, name=f"{name}-{self.port}", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=10)


class WerkzeugServer:
    """A threaded werkzeug server (moto's own request handler) in a daemon thread."""

    def __init__(self, app: Any, port: int | None = None, *, request_handler: Any = None, name: str = "s3"):
        from werkzeug.serving import make_server

        self.port = pick_port(port)
        self.server = make_server(LOOPBACK, self.port, app, threaded=True, request_handler=request_handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"{name}-{self.port}", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def make_webdav_app(root: Path, users: dict[str, dict[str, Any]]) -> Any:
    """wsgidav over ``root`` with HTTP Basic auth for ``users`` ({name: {"password": ...}})."""
    from wsgidav.wsgidav_app import WsgiDAVApp

    config = {
        "provider_mapping": {"/": str(root)},
        "http_authenticator": {
            "domain_controller": None,  # SimpleDomainController
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
            "trusted_auth_header": None,
        },
        "simple_dc": {"user_mapping": {"*": {name: {"password": str(u["password"]), "roles": []}
                                             for name, u in users.items()}}},
        "verbose": 1,
        "logging": {"enable": False, "enable_loggers": []},
        "property_manager": True,
        "lock_storage": True,
        "dir_browser": {"enable": False},
        "add_header_MS_Author_Via": True,
    }
    logging.getLogger("wsgidav").setLevel(logging.ERROR)
    return WsgiDAVApp(config)


def make_moto_app() -> tuple[Any, Any]:
    """moto's server-mode WSGI app and its request handler (all AWS services; we use S3)."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:  # no access log on stderr
            pass

    return DomainDispatcherApplication(create_backend_app), QuietHandler
