/*
 * fg-sandbox: the wrapper every lab device process is started through (device inits, learner
 * shells and commands, FRR daemons). It narrows the capability bounding set to a mask, clears
 * the inheritable and ambient sets, sets no_new_privs, installs the device seccomp filter and
 * execs the command. Built at install by scripts/ensure-system-deps.mjs; the policy is
 * documented in docs/lab-sandbox.md.
 *
 *   fg-sandbox <capability mask, hex> <program> [args...]
 *
 * Denied system calls fail with EPERM; clone3 fails with ENOSYS so that libc falls back to
 * clone, whose namespace flags the filter can inspect. Any other architecture's system call
 * ABI (i386 int 0x80, x32) kills the process: the filter only knows native numbers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define FG_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FG_ARCH AUDIT_ARCH_AARCH64
#else
#error "fg-sandbox knows x86_64 and aarch64 only"
#endif

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

/* Every namespace a process could create. clone()'s low byte is the exit signal, so
 * CLONE_NEWTIME (0x80) is only checked for unshare (clone cannot take it anyway). */
#define NS_FLAGS_CLONE (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP)
#define NS_FLAGS_UNSHARE (NS_FLAGS_CLONE | CLONE_NEWTIME)

static const long denied[] = {
    /* kernel attack surface a lab never needs */
    SYS_bpf, SYS_keyctl, SYS_add_key, SYS_request_key, SYS_perf_event_open, SYS_userfaultfd,
    SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
    /* the host's kernel, modules and clocks */
    SYS_kexec_load, SYS_kexec_file_load, SYS_init_module, SYS_finit_module, SYS_delete_module,
    SYS_reboot, SYS_swapon, SYS_swapoff, SYS_acct, SYS_syslog, SYS_settimeofday, SYS_clock_settime,
    SYS_clock_adjtime, SYS_adjtimex, SYS_quotactl,
    /* mounts and namespaces: a device's view of the file system and its namespaces are fixed */
    SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot, SYS_setns, SYS_open_tree, SYS_move_mount,
    SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_mount_setattr,
    /* file handles bypass path permission checks */
    SYS_open_by_handle_at,
#ifdef SYS_uselib
    SYS_uselib,
#endif
#ifdef SYS_iopl
    SYS_iopl,
#endif
#ifdef SYS_ioperm
    SYS_ioperm,
#endif
#ifdef SYS_lookup_dcookie
    SYS_lookup_dcookie,
#endif
};

#define N_DENIED (sizeof(denied) / sizeof(denied[0]))
#define ARG0_LOW offsetof(struct seccomp_data, args[0])

static void die(const char *what) {
  fprintf(stderr, "fg-sandbox: %s: %s\n", what, strerror(errno));
  exit(126);
}

static void install_filter(void) {
  struct sock_filter prog[8 + 2 * N_DENIED + 16];
  size_t n = 0;
#define STMT(code, k) (prog[n++] = (struct sock_filter)BPF_STMT((code), (k)))
#define JUMP(code, k, jt, jf) (prog[n++] = (struct sock_filter)BPF_JUMP((code), (k), (jt), (jf)))
  STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  JUMP(BPF_JMP | BPF_JEQ | BPF_K, FG_ARCH, 1, 0);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
  /* x32 numbers have bit 30 set */
  JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
  for (size_t i = 0; i < N_DENIED; i++) {
    JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)denied[i], 0, 1);
    STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  }
  JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
  /* unshare(flags) and clone(flags, ...): refuse any namespace flag */
  JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 0, 4);
  STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LOW);
  JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS_UNSHARE, 0, 1);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 4);
  STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LOW);
  JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS_CLONE, 0, 1);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
#undef STMT
#undef JUMP
  struct sock_fprog fprog = {.len = (unsigned short)n, .filter = prog};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0) die("seccomp filter");
}

static void limit_capabilities(unsigned long long keep) {
  long last = 40;
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
  if (f) {
    if (fscanf(f, "%ld", &last) != 1) last = 40;
    fclose(f);
  }
  for (long cap = 0; cap <= last; cap++) {
    if (cap < 64 && (keep >> cap) & 1) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) die("dropping a capability from the bounding set");
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) die("clearing ambient capabilities");
  /* Root's capabilities after exec are (inheritable | bounding): clear inheritable, and
   * narrow the current sets too (the exec'd program may not be root-owned). */
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &hdr, data) != 0) die("capget");
  for (int i = 0; i < 2; i++) {
    uint32_t mask = (uint32_t)(keep >> (32 * i));
    data[i].inheritable = 0;
    data[i].permitted &= mask;
    data[i].effective &= mask;
  }
  if (syscall(SYS_capset, &hdr, data) != 0) die("capset");
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fg-sandbox <capability mask, hex> <program> [args...]\n");
    return 2;
  }
  char *end = NULL;
  errno = 0;
  unsigned long long keep = strtoull(argv[1], &end, 16);
  if (errno != 0 || end == argv[1] || *end != '\0') {
    fprintf(stderr, "fg-sandbox: capability mask %s is not hex\n", argv[1]);
    return 2;
  }
  limit_capabilities(keep);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs");
  install_filter();
  execvp(argv[2], argv + 2);
  fprintf(stderr, "fg-sandbox: %s: %s\n", argv[2], strerror(errno));
  return errno == ENOENT ? 127 : 126;
}
