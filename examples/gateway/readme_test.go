package main

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestReadmePlansFile: the plans file the README shows, in the gateway's
// section, loads, and is the built-in default: the README documents the
// format with the file the gateway runs with, and cannot drift from it.
func TestReadmePlansFile(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block, err := fencedBlock(string(readme), "### The plans file\n", "```json\n")
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	fromReadme, err := loadConfig(writeConfig(t, block))
	if err != nil {
		t.Fatalf("the README's plans file: %v", err)
	}
	builtin, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromReadme, builtin) {
		t.Fatalf("the README's plans file is %+v, the built-in plans %+v", fromReadme, builtin)
	}
}

// fencedBlock returns the body of the first block opened by fence after the
// heading in markdown.
func fencedBlock(markdown, heading, fence string) (string, error) {
	_, section, ok := strings.Cut(markdown, heading)
	if !ok {
		return "", fmt.Errorf("no %q heading", strings.TrimSpace(heading))
	}
	_, block, ok := strings.Cut(section, fence)
	if !ok {
		return "", fmt.Errorf("no %q block after %q", strings.TrimSpace(fence), strings.TrimSpace(heading))
	}
	block, _, ok = strings.Cut(block, "```\n")
	if !ok {
		return "", fmt.Errorf("the block after %q does not end", strings.TrimSpace(heading))
	}
	return block, nil
}
