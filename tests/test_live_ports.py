"""The live servers' ports: a server another process starts gets a port outside the kernel's ephemeral range
(which every outgoing connection of a parallel run draws from), and one run in this process listens on a socket
bound before its thread starts, so no other process can take its port meanwhile."""

import socket

import pytest

from tests.live import _ephemeral_ports_start, free_port, listening_socket


def test_a_port_for_another_process_is_free_and_below_the_ephemeral_range():
    start = _ephemeral_ports_start()
    for _ in range(20):
        port = free_port()
        assert 10000 <= port < start
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # nothing holds it


def test_a_listening_socket_holds_its_port_until_closed():
    sock = listening_socket()
    port = sock.getsockname()[1]
    with socket.socket() as other, pytest.raises(OSError):
        other.bind(("127.0.0.1", port))
    sock.close()
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
