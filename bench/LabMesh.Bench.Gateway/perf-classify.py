#!/usr/bin/env python3
# Shares of a .NET gateway's CPU by component from `perf script` (perf record -g, DOTNET_PerfMapEnabled=1): each sample
# goes to the first frame from the leaf that names a component. bench/README.md, "Where a call's time goes".
# Usage: perf script -i perf.data | python3 bench/LabMesh.Bench.Gateway/perf-classify.py
import sys, re, collections
cats = [
 ("JIT (tiering, not per call)", re.compile(r"libclrjit")),
 ("GC", re.compile(r"gc_heap|GCHeap|WKS::|SVR::|GCToEEInterface|Allocat.*Slow|JIT_New")),
 ("rate limiting (the cap)", re.compile(r"\[(Microsoft\.AspNetCore\.RateLimiting|System\.Threading\.RateLimiting)\]")),
 ("hosting diagnostics, Activity", re.compile(r"\[Microsoft\.AspNetCore\.Hosting\]|\[System\.Diagnostics\.DiagnosticSource\]|System\.Diagnostics\.Activity|DiagnosticsHandler")),
 ("logging", re.compile(r"\[Microsoft\.Extensions\.Logging")),
 ("routing (endpoint match)", re.compile(r"\[Microsoft\.AspNetCore\.Routing\]")),
 ("YARP forwarder, transforms, load balancing", re.compile(r"\[Yarp\.ReverseProxy\]")),
 ("HttpClient HTTP/2 client (SocketsHttpHandler)", re.compile(r"\[System\.Net\.Http\]")),
 ("Kestrel HTTP/2 server", re.compile(r"\[Microsoft\.AspNetCore\.Server\.Kestrel[^\]]*\]|\[Microsoft\.AspNetCore\.Http[^\]]*\]")),
 ("sockets (send/recv, epoll)", re.compile(r"\[System\.Net\.Sockets\]|SystemNative_(Send|Recv|Read|Write|WaitForSocketEvents|Epoll)")),
 ("pipelines", re.compile(r"\[System\.IO\.Pipelines\]")),
 ("sockets: send/recv syscalls (stack cut at libc)", re.compile(r"__send\+|__libc_recv|sys_sendto|sys_recvfrom|epoll_wait")),
 ("threads: futex wake-ups and waits (stack cut at libc)", re.compile(r"futex|pthread_cond|lll_lock")),
 ("thread pool: dispatch, wake-ups, waits", re.compile(r"ThreadPool|LowLevelLifoSemaphore|PortableThreadPool|WorkerThread|Thread::intermediateThreadProc|ThreadNative")),
]
counts = collections.Counter(); total = 0
def flush(frames):
    global total
    if not frames: return
    total += 1
    for f in frames:
        for name, rx in cats:
            if rx.search(f):
                counts[name] += 1; return
    if any("libcoreclr" in f or "libSystem.Native" in f for f in frames):
        counts["runtime native, unresolved (libcoreclr)"] += 1; return
    leaf = frames[0]
    counts["other: kernel" if "[kernel" in leaf or "kallsyms" in leaf else "other: user"] += 1
frames = []
for line in sys.stdin:
    if not line.strip():
        flush(frames); frames = []; continue
    if line.startswith((" ", "\t")):
        frames.append(line.strip())
    else:
        flush(frames); frames = []
flush(frames)
for name, n in counts.most_common():
    print(f"{100.0*n/total:6.1f}%  {name}")
print(f"{total} samples")
