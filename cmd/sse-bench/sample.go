package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procUsage reads a process's resident set size (VmRSS, KiB) and its CPU
// time (utime+stime) from /proc.
func procUsage(pid int) (rssKiB int64, cpu time.Duration, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	if i := bytes.Index(status, []byte("VmRSS:")); i >= 0 {
		line := status[i+len("VmRSS:"):]
		if j := bytes.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
		fields := bytes.Fields(line)
		if len(fields) > 0 {
			rssKiB, _ = strconv.ParseInt(string(fields[0]), 10, 64)
		}
	}
	cpu, err = procCPU(pid)
	return rssKiB, cpu, err
}

// procCPU reads utime+stime. The command name in field 2 may hold spaces and
// parentheses, so fields are counted from the last ')'.
func procCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := bytes.Fields(stat[i+1:])
	// After the name: state(3) ppid(4) ... utime(14) stime(15).
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad cpu fields", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// selfCPU is this process's CPU time, from getrusage (microsecond resolution).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverSampler follows the server under test: the RSS high-water mark while
// it runs, and point readings on demand. A zero pid samples nothing.
type serverSampler struct {
	pid    int
	maxRSS atomic.Int64
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func startSampler(ctx context.Context, pid int, every time.Duration) *serverSampler {
	s := &serverSampler{pid: pid}
	if pid == 0 {
		return s
	}
	ctx, s.stop = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.read()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// read returns the current RSS (KiB) and CPU time; zeros when not sampling.
func (s *serverSampler) read() (int64, time.Duration) {
	if s.pid == 0 {
		return 0, 0
	}
	rss, cpu, err := procUsage(s.pid)
	if err != nil {
		return 0, 0
	}
	for {
		m := s.maxRSS.Load()
		if rss <= m || s.maxRSS.CompareAndSwap(m, rss) {
			break
		}
	}
	return rss, cpu
}

func (s *serverSampler) close() {
	if s.stop != nil {
		s.stop()
		s.wg.Wait()
	}
}

// toolCPU is the CPU time of this process plus its worker processes.
func toolCPU(workerPIDs []int) time.Duration {
	total := selfCPU()
	for _, pid := range workerPIDs {
		if c, err := procCPU(pid); err == nil {
			total += c
		}
	}
	return total
}
