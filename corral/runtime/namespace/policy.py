"""The sandbox security policy, declared once.

Every rule a sandbox runs under lives here as plain data: which capabilities survive, which
syscalls are allowed (and with which arguments), which /proc paths are hidden or read-only and
which device nodes exist. The namespace tier applies it with libseccomp, prctl and mounts; a
later OCI-based tier (gVisor) can render the very same data into a ``config.json``, so the two
tiers can never drift apart. Like nsjail's single config file: read this module to know what a
sandbox may do.

The syscall allowlist starts from the syscalls a container with Docker's default capability set
may make, then removes what we consider unnecessary attack surface for untrusted code
(ptrace and cross-process memory access, io_uring, userfaultfd). The default action for
anything unlisted is EPERM; other architectures (x32, i386 on x86_64) are killed.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from corral.runtime.namespace import syscalls as sc

# --- capabilities -------------------------------------------------------------------------

CAPABILITY_NUMBERS: dict[str, int] = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5,
    "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10,
    "NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15,
    "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20,
    "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23, "SYS_RESOURCE": 24, "SYS_TIME": 25,
    "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30,
    "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}

# Docker's default set. These are capabilities *in the sandbox's user namespace*; the mount,
# network, pid, ipc and uts namespaces belong to the host's user namespace, so none of them
# reaches a kernel object the sandbox does not own.
SANDBOX_CAPABILITIES: tuple[str, ...] = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)


def capability_mask(names: tuple[str, ...] = SANDBOX_CAPABILITIES) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITY_NUMBERS[name]
    return mask


# --- seccomp ------------------------------------------------------------------------------

DEFAULT_ERRNO = errno.EPERM

# Grouped by purpose so a reviewer can judge each group; order is irrelevant.
ALLOWED_SYSCALLS: dict[str, tuple[str, ...]] = {
    "process lifecycle": (
        "execve", "execveat", "exit", "exit_group", "fork", "vfork", "wait4", "waitid",
        "waitpid", "set_tid_address", "set_robust_list", "get_robust_list", "rseq",
        "restart_syscall", "arch_prctl", "modify_ldt", "set_thread_area", "get_thread_area",
        "prctl", "seccomp", "membarrier", "getcpu", "sysinfo", "uname", "times", "getrusage",
        "pidfd_open", "pidfd_send_signal", "process_mrelease",
    ),
    "identity": (
        "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
        "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
        "setfsuid", "setfsgid", "capget", "capset", "getpid", "getppid", "gettid", "getpgid",
        "getpgrp", "getsid", "setpgid", "setsid",
    ),
    "signals": (
        "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
        "rt_sigpending", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigqueueinfo",
        "rt_tgsigqueueinfo", "sigaltstack", "signalfd", "signalfd4", "pause", "alarm",
    ),
    "memory": (
        "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
        "mlock", "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages",
        "memfd_create", "memfd_secret", "pkey_alloc", "pkey_free", "pkey_mprotect",
    ),
    "files": (
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
        "preadv2", "pwritev2", "open", "openat", "openat2", "creat", "close", "close_range",
        "lseek", "dup", "dup2", "dup3", "fcntl", "flock", "fsync", "fdatasync", "syncfs",
        "sync", "sync_file_range", "truncate", "ftruncate", "fallocate", "fadvise64",
        "readahead", "sendfile", "splice", "tee", "vmsplice", "copy_file_range",
        "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access",
        "faccessat", "faccessat2", "getdents", "getdents64", "getcwd", "chdir", "fchdir",
        "chroot", "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2", "link",
        "linkat", "unlink", "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat",
        "mknod", "mknodat", "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown",
        "fchownat", "umask", "utime", "utimes", "utimensat", "futimesat",
        "getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr",
        "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr",
        "fremovexattr", "name_to_handle_at", "inotify_init", "inotify_init1",
        "inotify_add_watch", "inotify_rm_watch", "fanotify_mark", "pipe", "pipe2",
        "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
        "ioprio_get", "ioprio_set", "landlock_create_ruleset", "landlock_add_rule",
        "landlock_restrict_self", "ioctl",
    ),
    "polling and time": (
        "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl",
        "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "futex",
        "futex_waitv", "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres",
        "gettimeofday", "time", "adjtimex", "clock_adjtime", "getitimer", "setitimer",
        "timer_create", "timer_delete", "timer_gettime", "timer_settime", "timer_getoverrun",
        "timerfd_create", "timerfd_gettime", "timerfd_settime",
    ),
    "scheduling and limits": (
        "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr",
        "sched_setattr", "sched_getparam", "sched_setparam", "sched_getscheduler",
        "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
        "sched_rr_get_interval", "getpriority", "setpriority", "getrlimit", "setrlimit",
        "prlimit64",
    ),
    "sockets": (
        "socketpair", "bind", "listen", "accept", "accept4", "connect", "shutdown",
        "getsockname", "getpeername", "getsockopt", "setsockopt", "sendto", "recvfrom",
        "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "socket",
    ),
    # getrandom is how OpenSSL, Node.js and glibc seed themselves: without it node aborts at
    # start. The rest are newer kernels' variants of calls allowed above (Docker allows them too).
    "randomness and newer variants": (
        "getrandom", "fchmodat2", "map_shadow_stack", "futex_wake", "futex_wait", "futex_requeue",
        "cachestat",
    ),
    "System V and POSIX IPC": (
        "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
        "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend",
        "mq_timedreceive", "mq_notify", "mq_getsetattr",
    ),
}

# Denied on purpose although Docker's default profile would allow them (documented so that a
# future edit does not "restore" them by accident).
DENIED_ON_PURPOSE: dict[str, str] = {
    "ptrace": "no debugging of other processes; also blocks attacks on envd (pid 1)",
    "process_vm_readv": "reads another process's memory",
    "process_vm_writev": "writes another process's memory",
    "io_uring_setup": "large kernel attack surface, bypasses seccomp per-op filtering",
    "io_uring_enter": "see io_uring_setup",
    "io_uring_register": "see io_uring_setup",
}

TIOCSTI = 0x5412
TIOCLINUX = 0x541C
AF_VSOCK = 40


@dataclass(frozen=True)
class ArgRule:
    """``syscall`` gets ``action`` when argument ``arg`` masked with ``mask`` equals ``value``.

    ``action`` is "allow" or an errno number. All comparisons are masked so that high bits the
    kernel ignores (ioctl's cmd is 32-bit) cannot be used to slip past a rule.
    """

    syscall: str
    arg: int
    mask: int
    value: int
    action: str | int


# Syscalls allowed only when an argument matches (anything else gets the default EPERM).
ALLOW_RULES: tuple[ArgRule, ...] = (
    # clone without any namespace flag.
    ArgRule("clone", 0, sc.ALL_NAMESPACE_FLAGS, 0, "allow"),
    # personality: only the harmless personas Docker allows (PER_LINUX, UNAME26,
    # ADDR_NO_RANDOMIZE and their combination, and the 0xffffffff query).
    ArgRule("personality", 0, 0xFFFFFFFF, 0x0, "allow"),
    ArgRule("personality", 0, 0xFFFFFFFF, 0x8, "allow"),
    ArgRule("personality", 0, 0xFFFFFFFF, 0x20000, "allow"),
    ArgRule("personality", 0, 0xFFFFFFFF, 0x20008, "allow"),
    ArgRule("personality", 0, 0xFFFFFFFF, 0xFFFFFFFF, "allow"),
)

# Calls of otherwise allowed syscalls that are refused. They are applied as a second,
# default-allow filter stacked on the allowlist (libseccomp cannot express "allow unless" when
# the exception's action equals the default action); the kernel applies the stricter answer.
DENY_RULES: tuple[ArgRule, ...] = (
    ArgRule("ioctl", 1, 0xFFFFFFFF, TIOCSTI, errno.EPERM),    # inject keystrokes into a tty
    ArgRule("ioctl", 1, 0xFFFFFFFF, TIOCLINUX, errno.EPERM),  # same, via the linux console
    ArgRule("socket", 0, 0xFFFFFFFF, AF_VSOCK, errno.EPERM),  # reach hypervisor services
)

# Syscalls with a fixed non-default answer regardless of arguments.
FIXED_ERRNO: dict[str, int] = {
    # glibc and Go fall back to clone() on ENOSYS; clone3's flags live in memory where seccomp
    # cannot inspect them, so it can never be allowed.
    "clone3": errno.ENOSYS,
}


def allowed_syscall_names() -> list[str]:
    names: set[str] = set()
    for group in ALLOWED_SYSCALLS.values():
        names.update(group)
    overlap = names & set(DENIED_ON_PURPOSE)
    assert not overlap, overlap
    return sorted(names)


# --- filesystem view ----------------------------------------------------------------------

# Hidden inside the sandbox (a file gets /dev/null bound over it, a directory an empty
# read-only tmpfs), as Docker does.
MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/proc/sysrq-trigger", "/proc/interrupts", "/proc/kallsyms", "/proc/kmsg",
    "/proc/kpagecgroup", "/proc/kpagecount", "/proc/kpageflags", "/proc/mtrr",
    "/proc/config.gz", "/proc/vmallocinfo", "/proc/slabinfo",
)
READONLY_PATHS: tuple[str, ...] = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys")

# Character devices created in the sandbox's /dev: name -> (major, minor).
DEVICES: dict[str, tuple[int, int]] = {
    "null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9),
    "tty": (5, 0),
}
DEV_SYMLINKS: dict[str, str] = {
    "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx",
}
TTY_GID = 5  # Debian's "tty" group inside the sandbox, owner group of /dev/pts/*

# Network sysctls written inside the sandbox's own network namespace before it starts.
NETNS_SYSCTLS: dict[str, str] = {
    # The netns belongs to the host user namespace, so the sandbox's root lacks
    # CAP_NET_BIND_SERVICE there; let any port be bound instead (nothing else listens).
    "net/ipv4/ip_unprivileged_port_start": "0",
    # Unprivileged ICMP echo sockets so that ping works without NET_RAW on the netns.
    "net/ipv4/ping_group_range": "0 2147483647",
}
