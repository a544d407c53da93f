#!/usr/bin/env python3
"""What one small write to each of N loopback TCP connections costs on this machine, with
nothing of the server around it: the floor under the control plane's fan-out.

A child process opens N connections to this one; this one accepts them, then writes one
message of SIZE bytes to every accepted socket, ROUNDS times (100 ms apart), and prints the
wall time of a round and this process's CPU time per write (the kernel runs the receiving
side of a loopback send in the sender's time). With READERS > 0, that many threads of the
child read its sockets through epoll meanwhile, as a client process would; with 0 nothing
reads and the data waits in the receive buffers.

    python3 scripts/loopback-send.py [N=10000] [SIZE=200] [ROUNDS=20] [READERS=0] [NODELAY=1]

Pin it to see one core's share, e.g. `taskset -c 0 python3 scripts/loopback-send.py`.
"""

import os
import resource
import select
import socket
import sys
import threading
import time


def clients(addr, n: int, readers: int, stop_fd: int) -> None:
    """The child: connects `n` sockets and reads them with `readers` threads until told."""
    socks = [socket.create_connection(addr) for _ in range(n)]
    for c in socks:
        c.setblocking(False)
    done = threading.Event()

    def read(share):
        ep = select.epoll()
        by_fd = {}
        for c in share:
            ep.register(c.fileno(), select.EPOLLIN)
            by_fd[c.fileno()] = c
        while not done.is_set():
            for fd, _ in ep.poll(0.05):
                try:
                    by_fd[fd].recv(65536)
                except BlockingIOError:
                    pass

    threads = [threading.Thread(target=read, args=(socks[i::readers],)) for i in range(readers)]
    for t in threads:
        t.start()
    os.read(stop_fd, 1)
    done.set()
    for t in threads:
        t.join()


def main() -> None:
    args = [int(a) for a in sys.argv[1:]]
    n, size, rounds, readers, nodelay = (args + [10000, 200, 20, 0, 1][len(args):])[:5]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n + 64, hard), hard))

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    addr = listener.getsockname()
    stop_r, stop_w = os.pipe()
    child = os.fork()
    if child == 0:
        listener.close()
        clients(addr, n, readers, stop_r)
        os._exit(0)
    accepted = []
    for _ in range(n):
        s, _ = listener.accept()
        if nodelay:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        accepted.append(s)
    time.sleep(0.5)

    msg = b"x" * size
    per_round = []
    cpu0 = os.times()
    for _ in range(rounds):
        t0 = time.perf_counter()
        for s in accepted:
            s.send(msg)
        per_round.append(time.perf_counter() - t0)
        time.sleep(0.1)
    cpu1 = os.times()
    os.write(stop_w, b"x")
    os.waitpid(child, 0)
    cpu2 = os.times()

    per_round.sort()
    writes = n * rounds
    print(
        f"{n} connections, {size}-byte writes, {rounds} rounds, {readers} reader thread(s) "
        f"in the other process, TCP_NODELAY {'on' if nodelay else 'off'}"
    )
    print(
        "one round (a write to every connection), ms: "
        f"p50 {per_round[len(per_round) // 2] * 1e3:.1f}, max {per_round[-1] * 1e3:.1f}"
    )
    print(
        f"per write: wall {per_round[len(per_round) // 2] / n * 1e6:.2f} us (median round); "
        f"the writer's CPU: user {(cpu1.user - cpu0.user) / writes * 1e6:.2f} us, "
        f"system {(cpu1.system - cpu0.system) / writes * 1e6:.2f} us"
    )
    if readers:
        # The child's whole life, its connecting included: an upper bound on reading.
        print(
            f"the reading process's CPU per message, at most: user "
            f"{(cpu2.children_user - cpu0.children_user) / writes * 1e6:.2f} us, system "
            f"{(cpu2.children_system - cpu0.children_system) / writes * 1e6:.2f} us"
        )


if __name__ == "__main__":
    main()
