# Install rdma-initrd where dracut, mkinitcpio and the system look.
#   make && make install [DESTDIR=...] [PREFIX=/usr] [SYSCONFDIR=/etc]
#        [DRACUTMODDIR=...] [INITCPIODIR=...] [INITRAMFSTOOLSDIR=...]
#        [KERNELINSTALLDIR=...] [DRACUTCONFDIR=...] [CARGO_TARGET_DIR=...]
#   make uninstall (same variables)
PREFIX ?= /usr
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
SYSCONFDIR ?= /etc
DRACUTMODDIR ?= $(LIBDIR)/dracut/modules.d
DRACUTCONFDIR ?= $(LIBDIR)/dracut/dracut.conf.d
INITCPIODIR ?= $(LIBDIR)/initcpio
INITRAMFSTOOLSDIR ?= $(PREFIX)/share/initramfs-tools
MODPROBEDIR ?= $(LIBDIR)/modprobe.d
KERNELINSTALLDIR ?= $(LIBDIR)/kernel/install.d
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
CARGO ?= cargo
TARGET := $(or $(CARGO_TARGET_DIR),target)
BIN := $(TARGET)/release/rdma-initrd
GEN := $(TARGET)/generated

.PHONY: all install uninstall clean

all: $(BIN)

$(BIN):
	$(CARGO) build --release --locked

$(GEN)/stamp: $(BIN)
	rm -rf $(GEN)
	$(BIN) generate man --out $(GEN)/man
	$(BIN) generate completions --out $(GEN)/completions
	touch $@

install: $(BIN) $(GEN)/stamp
	install -Dm755 $(BIN) $(DESTDIR)$(BINDIR)/rdma-initrd
	install -Dm755 dracut/50rdma-initrd/module-setup.sh $(DESTDIR)$(DRACUTMODDIR)/50rdma-initrd/module-setup.sh
	install -Dm644 dracut/50-rdma-initrd.conf $(DESTDIR)$(DRACUTCONFDIR)/50-rdma-initrd.conf
	install -Dm644 mkinitcpio/install/rdma-initrd $(DESTDIR)$(INITCPIODIR)/install/rdma-initrd
	install -Dm644 mkinitcpio/hooks/rdma-initrd $(DESTDIR)$(INITCPIODIR)/hooks/rdma-initrd
	install -Dm755 initramfs-tools/hooks/rdma-initrd $(DESTDIR)$(INITRAMFSTOOLSDIR)/hooks/rdma-initrd
	install -Dm644 units/modprobe.d/rdma-initrd.conf $(DESTDIR)$(MODPROBEDIR)/rdma-initrd.conf
	install -Dm755 kernel-install/55-rdma-initrd.install $(DESTDIR)$(KERNELINSTALLDIR)/55-rdma-initrd.install
	install -d $(DESTDIR)$(MANDIR)/man8
	install -m644 $(GEN)/man/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -Dm644 $(GEN)/completions/rdma-initrd.bash $(DESTDIR)$(BASHCOMPDIR)/rdma-initrd
	install -Dm644 $(GEN)/completions/_rdma-initrd $(DESTDIR)$(ZSHCOMPDIR)/_rdma-initrd
	install -Dm644 $(GEN)/completions/rdma-initrd.fish $(DESTDIR)$(FISHCOMPDIR)/rdma-initrd.fish
	install -d $(DESTDIR)$(SYSCONFDIR)/rdma-initrd

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/rdma-initrd
	rm -rf $(DESTDIR)$(DRACUTMODDIR)/50rdma-initrd
	rm -f $(DESTDIR)$(DRACUTCONFDIR)/50-rdma-initrd.conf
	rm -f $(DESTDIR)$(INITCPIODIR)/install/rdma-initrd $(DESTDIR)$(INITCPIODIR)/hooks/rdma-initrd
	rm -f $(DESTDIR)$(INITRAMFSTOOLSDIR)/hooks/rdma-initrd
	rm -f $(DESTDIR)$(MODPROBEDIR)/rdma-initrd.conf
	rm -f $(DESTDIR)$(KERNELINSTALLDIR)/55-rdma-initrd.install
	rm -f $(DESTDIR)$(MANDIR)/man8/rdma-initrd.8 $(DESTDIR)$(MANDIR)/man8/rdma-initrd-*.8
	rm -f $(DESTDIR)$(BASHCOMPDIR)/rdma-initrd $(DESTDIR)$(ZSHCOMPDIR)/_rdma-initrd $(DESTDIR)$(FISHCOMPDIR)/rdma-initrd.fish
	-rmdir $(DESTDIR)$(SYSCONFDIR)/rdma-initrd 2>/dev/null

clean:
	$(CARGO) clean
