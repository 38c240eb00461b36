# The measured workload for bench/accel: a server process and a client process (fork) on one
# loopback connection, blocking sockets, so the figures are the kernel's and not a runtime's.
#   rr N SIZE    : N request/response round trips of SIZE bytes; prints p50/p99 in microseconds
#   bulk BYTES W : the client sends BYTES in writes of W bytes; prints MB/s
import os, select, socket, sys, time

mode, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 0)); srv.listen(1); port = srv.getsockname()[1]
pid = os.fork()
if pid == 0:
    c, _ = srv.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(1 << 20); view = memoryview(buf)
    if mode == 'rr':
        for _ in range(a):
            got = 0
            while got < b:
                got += c.recv_into(view[got:b])
            c.sendall(view[:b])
    else:
        while c.recv_into(buf):
            pass
        c.sendall(b'k')
    os._exit(0)
s = socket.create_connection(('127.0.0.1', port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buf = bytearray(1 << 20); view = memoryview(buf)
if mode == 'rr':
    msg = b'x' * b; lat = []
    for _ in range(a):
        t = time.perf_counter_ns()
        s.sendall(msg)
        got = 0
        while got < b:
            got += s.recv_into(view[got:b])
        lat.append(time.perf_counter_ns() - t)
    lat.sort()
    print(f'{lat[len(lat) // 2] / 1000:.2f} {lat[int(len(lat) * 0.99)] / 1000:.2f}')
else:
    chunk = os.urandom(b); sent = 0; t = time.perf_counter_ns()
    while sent < a:
        s.sendall(chunk); sent += b
    # poll first: a blocking recv after shutdown(SHUT_WR) on a redirected socket can return EAGAIN
    # (a spurious wake-up in the kernel's tcp_bpf_recvmsg; see test/kernel/accel-semantics)
    s.shutdown(socket.SHUT_WR); select.select([s], [], []); s.recv(1)
    print(f'{sent / ((time.perf_counter_ns() - t) / 1e9) / 1e6:.1f}')
os.waitpid(pid, 0)
