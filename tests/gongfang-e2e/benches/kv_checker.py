"""The key-value checker as a Python script run once per action, the way Python-based A/D
platforms run checkers: `kv_checker.py HOST PORT check|put|get KEY VALUE`. Exit 101 = ok."""
import socket
import sys


def main():
    host, port, action, key, value = sys.argv[1:6]
    try:
        conn = socket.create_connection((host, int(port)), timeout=10)
    except OSError:
        sys.exit(104)
    reader = conn.makefile("r")
    if action in ("check", "put"):
        conn.sendall(f"PUT {key} {value}\n".encode())
        if reader.readline().strip() != "OK":
            sys.exit(102)
    if action in ("check", "get"):
        conn.sendall(f"GET {key}\n".encode())
        if reader.readline().strip() != f"VALUE {value}":
            sys.exit(103)
    sys.exit(101)


main()
