package localcluster

import "syscall"

// sysProcAttr puts the child in its own process group (so a signal reaches
// its children too) and kills it when the parent thread dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
