/*
 * LD_PRELOAD for linux.uml: pad its XSAVE register writes to the host's full XSAVE size.
 *
 * Why: Debian 12's linux.uml (6.1) saves and restores its processes' FPU state with
 * PTRACE_GETREGSET/PTRACE_SETREGSET NT_X86_XSTATE and a fixed 2696-byte buffer (x87 .. AVX-512,
 * PKRU). The host kernel accepts a SETREGSET only with its whole user XSAVE size; on CPUs with
 * larger state (AMX: about 11 KiB) every write fails with EFAULT, and the guest's first process
 * dies ("ptrace set fp regs failed, errno = 14", kernel panic in init). Reads are fine (the
 * kernel truncates them).
 *
 * What: a SETREGSET NT_X86_XSTATE that fails with EFAULT is retried once with the buffer copied
 * to the front of a zeroed full-size one, its XSTATE_BV limited to the components that lie
 * inside the caller's buffer (the others are set to their init state, which they are anyway:
 * UML's processes cannot ask the host for AMX). After the first such retry the padded write is
 * used directly. Nothing else changes; on hosts where the plain call works this is never used.
 *
 * Built by tests/vm/uml.py with the host's C compiler.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#define XSTATE_BV_OFFSET 512
#define XSTATE_MAX (64 * 1024)

typedef long (*ptrace_fn)(int, pid_t, void *, void *);

static ptrace_fn real_ptrace;
/* UML calls ptrace from one host thread (its kernel); not reentrant, not on UML's small stacks. */
static unsigned char full_state[XSTATE_MAX] __attribute__((aligned(64)));
static size_t full_size;   /* the host's user XSAVE size, learnt at the first EFAULT */
static int pad_always;

/* XSTATE_BV bits of the user components that lie entirely within the first `len` bytes. */
static uint64_t components_within(size_t len)
{
    uint64_t mask = 3;  /* x87 and SSE: the legacy area */
    for (unsigned i = 2; i < 63; i++) {
        unsigned size, offset, ecx, edx;
        if (!__get_cpuid_count(0xd, i, &size, &offset, &ecx, &edx))
            break;
        if (size == 0 || (ecx & 1))  /* not supported, or a supervisor component */
            continue;
        if ((size_t)offset + size <= len)
            mask |= (uint64_t)1 << i;
    }
    return mask;
}

static long padded_set(pid_t pid, const struct iovec *iov)
{
    if (full_size == 0) {
        struct iovec probe = { full_state, sizeof full_state };
        if (real_ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &probe) == -1)
            return -1;
        full_size = probe.iov_len;
        memset(full_state, 0, sizeof full_state);
    }
    if (iov->iov_len >= full_size || iov->iov_len < XSTATE_BV_OFFSET + 8) {
        errno = EFAULT;  /* not the short-buffer case: report the original error */
        return -1;
    }
    static size_t copied;
    static uint64_t keep;
    if (copied != iov->iov_len) {
        if (copied > iov->iov_len)
            memset(full_state + iov->iov_len, 0, copied - iov->iov_len);
        copied = iov->iov_len;
        keep = components_within(copied);
    }
    memcpy(full_state, iov->iov_base, copied);
    uint64_t bv;
    memcpy(&bv, full_state + XSTATE_BV_OFFSET, sizeof bv);
    bv &= keep;
    memcpy(full_state + XSTATE_BV_OFFSET, &bv, sizeof bv);
    struct iovec padded = { full_state, full_size };
    return real_ptrace(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &padded);
}

long ptrace(enum __ptrace_request request, ...)
{
    va_list ap;
    va_start(ap, request);
    pid_t pid = va_arg(ap, pid_t);
    void *addr = va_arg(ap, void *);
    void *data = va_arg(ap, void *);
    va_end(ap);

    if (!real_ptrace)
        real_ptrace = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
    int xstate_set = request == PTRACE_SETREGSET && (uintptr_t)addr == NT_X86_XSTATE;
    if (xstate_set && pad_always)
        return padded_set(pid, data);
    long rc = real_ptrace(request, pid, addr, data);
    if (rc == -1 && errno == EFAULT && xstate_set) {
        rc = padded_set(pid, data);
        if (rc == 0)
            pad_always = 1;
    }
    return rc;
}
