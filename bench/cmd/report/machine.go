package main

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

type machine struct {
	CPU       string
	Cores     int
	Memory    string
	Go        string
	OS        string
	LoadStart string
}

type report struct {
	Plan        plan
	BudgetSet   bool // the budget came from -budget
	Command     string
	Start       time.Time
	Elapsed     time.Duration
	Machine     machine
	LoadAfter   string
	Speed       step
	Memory      step
	Correctness correctness
	Redis       redisStep
	Profiles    []profile
}

func readMachine() machine {
	m := machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadStart: loadAvg()}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		m.Memory = kb
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.Go = strings.TrimSpace(strings.TrimPrefix(string(out), "go version "))
	} else {
		m.Go = runtime.Version()
	}
	return m
}

// procField returns the value of the first "name: value" line of file.
func procField(file, name string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}
