from __future__ import annotations

from corral.runtime.namespace import policy

MUST_BE_DENIED = {
    "mount", "umount2", "unshare", "setns", "pivot_root", "ptrace", "bpf", "perf_event_open",
    "keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "reboot", "swapon", "swapoff", "syslog", "acct",
    "open_tree", "move_mount", "fsopen", "fsmount", "fspick", "mount_setattr", "userfaultfd",
    "process_vm_readv", "process_vm_writev", "io_uring_setup", "clone3", "personality",
    "sethostname", "setdomainname", "settimeofday", "clock_settime", "iopl", "ioperm",
    "open_by_handle_at", "quotactl", "lookup_dcookie", "vhangup", "kcmp", "pidfd_getfd",
    "clone",  # allowed only through the argument rule below
}


def test_dangerous_syscalls_are_not_on_the_allowlist() -> None:
    assert not MUST_BE_DENIED & set(policy.allowed_syscall_names())


def test_clone_rule_rejects_every_namespace_flag() -> None:
    (rule,) = [r for r in policy.ALLOW_RULES if r.syscall == "clone"]
    assert rule.value == 0
    for flag in (0x80, 0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                 0x40000000):
        assert rule.mask & flag


def test_deny_rules_mask_high_bits() -> None:
    for rule in policy.DENY_RULES:
        assert rule.mask == 0xFFFFFFFF and rule.action != "allow"


def test_capabilities_are_dockers_default_set() -> None:
    assert policy.capability_mask() == 0xA80425FB
    assert "SYS_ADMIN" not in policy.SANDBOX_CAPABILITIES


def test_masked_paths_cover_kernel_info_leaks() -> None:
    assert {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
            "/proc/scsi", "/proc/kallsyms"} <= set(policy.MASKED_PATHS)
    assert {"/proc/sys", "/proc/irq", "/proc/bus"} <= set(policy.READONLY_PATHS)
