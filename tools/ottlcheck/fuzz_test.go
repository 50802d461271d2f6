package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The differential test feeds the oracle mutated texts; every one must get a verdict, never a
// panic that looks like a refusal. `go test` replays the corpus as seeds;
// `go test -fuzz FuzzEveryTextGetsAVerdict` mutates them.
func FuzzEveryTextGetsAVerdict(f *testing.F) {
	file, err := os.Open(filepath.Join("testdata", "corpus.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		var input checkCase
		if err := json.Unmarshal(scanner.Bytes(), &input); err != nil {
			f.Fatal(err)
		}
		f.Add(input.Kind, input.Context, input.Text)
	}
	f.Fuzz(func(t *testing.T, kind, context, text string) {
		err := checkText(checkCase{Kind: kind, Context: context, Text: text})
		if err != nil && strings.HasPrefix(err.Error(), "panic while loading") {
			t.Errorf("%s in %s context: %q: %v", kind, context, text, err)
		}
	})
}
