"""Whether a server can listen where it is told to, checked before anything starts."""

import errno
import socket

from windpipe.cli.app import UserError


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on ``host:port`` (binding the way servers do, SO_REUSEADDR)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
                raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return False


def require_free_port(host: str, port: int, label: str, variable: str) -> None:
    """A one-line UserError naming ``label`` and the setting to change if the port is taken."""
    if port_in_use(host, port):
        raise UserError(
            f"port {port} on {host} ({label}) is already in use; stop what listens there "
            f"or choose another port with {variable}"
        )
