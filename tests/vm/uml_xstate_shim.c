/*
 * LD_PRELOAD shim for User-Mode Linux 6.1 (Debian's linux.uml) on hosts whose XSAVE area is
 * larger than UML's fixed buffer (AVX-512 / AMX CPUs).
 *
 * Why: UML restores a guest thread's FPU state with ptrace(PTRACE_SETREGSET, NT_X86_XSTATE)
 * and a buffer of sizeof(struct _xstate) (832 bytes). Host kernels accept SETREGSET for
 * NT_X86_XSTATE only with the whole XSAVE buffer (fpu_user_cfg.max_size, ~11 KB with AMX) and
 * answer EFAULT otherwise, so UML panics at boot: "userspace - ptrace set fp regs failed,
 * errno = 14". GETREGSET with a short buffer is fine (the kernel truncates).
 *
 * What: for a short SETREGSET of NT_X86_XSTATE, read the thread's whole current XSAVE area,
 * overlay the bytes UML gave (legacy area, header, YMM), and write the whole area back. The
 * components beyond UML's buffer keep the values the host thread has, which is what UML saw
 * on hosts where its buffer was large enough. Every other call goes to libc's ptrace.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef long (*ptrace_fn)(enum __ptrace_request, pid_t, void *, void *);

static ptrace_fn real_ptrace;
static unsigned char *full_buf;
static size_t full_size;

static long call_real(enum __ptrace_request req, pid_t pid, void *addr, void *data)
{
	if (!real_ptrace)
		real_ptrace = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
	return real_ptrace(req, pid, addr, data);
}

long ptrace(enum __ptrace_request req, ...)
{
	va_list ap;
	va_start(ap, req);
	pid_t pid = va_arg(ap, pid_t);
	void *addr = va_arg(ap, void *);
	void *data = va_arg(ap, void *);
	va_end(ap);

	if (req != PTRACE_SETREGSET || (long)addr != NT_X86_XSTATE || data == NULL)
		return call_real(req, pid, addr, data);
	struct iovec *iov = data;
	if (full_size == 0) {
		/* The regset's size: GETREGSET with a large buffer reports it in iov_len. */
		size_t cap = 1 << 16;
		unsigned char *probe = calloc(1, cap);
		struct iovec big = { probe, cap };
		if (!probe)
			return call_real(req, pid, addr, data);
		if (call_real(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &big) < 0) {
			free(probe);
			return call_real(req, pid, addr, data);
		}
		full_buf = probe;
		full_size = big.iov_len;
	}
	if (iov->iov_len >= full_size)
		return call_real(req, pid, addr, data);
	struct iovec whole = { full_buf, full_size };
	if (call_real(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &whole) < 0)
		return -1;
	memcpy(full_buf, iov->iov_base, iov->iov_len);
	whole.iov_len = full_size;
	return call_real(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &whole);
}
