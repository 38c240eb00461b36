# Kernel side of tcplens: one object per *.bpf.c, CO-RE against this machine's BTF.
BUILD   := build
VMLINUX := $(BUILD)/vmlinux.h
SRCS    := $(shell find src test bench -name '*.bpf.c' 2>/dev/null)
OBJS    := $(patsubst %.bpf.c,$(BUILD)/bpf/%.bpf.o,$(SRCS))
HDRS    := $(wildcard bpf/include/*.h) $(shell find src test bench -name '*.h' 2>/dev/null)
ARCH    := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
CFLAGS  := -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Wno-unused-function \
           -I$(BUILD) -Ibpf/include -I/usr/include/$(shell uname -m)-linux-gnu

all: $(OBJS)

$(VMLINUX):
	@mkdir -p $(BUILD)
	@test -r /sys/kernel/btf/vmlinux || { echo "TCPLENS_ERR_NO_BTF: /sys/kernel/btf/vmlinux is missing (kernel needs CONFIG_DEBUG_INFO_BTF=y)" >&2; exit 1; }
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/bpf/%.bpf.o: %.bpf.c $(VMLINUX) $(HDRS)
	@mkdir -p $(dir $@)
	clang $(CFLAGS) -I$(dir $<) -c $< -o $@

# accept-compat is accept.bpf.c built without the bpf_cast_to_kern_ctx kfunc (kernels before 6.2)
$(BUILD)/bpf/src/capabilities/accept/accept-compat.bpf.o: src/capabilities/accept/accept.bpf.c

clean:
	rm -rf $(BUILD)

.PHONY: all clean
