package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// ErrRecursiveAlias is wrapped when a manifest has a YAML alias inside the node its anchor names
// (`metadata: &m {name: *m}`). kustomize's kyaml expands aliases by recursion without a guard
// (kyaml v0.21.1 yaml.deAnchor), so such a file overflows the goroutine stack: a fatal error that no
// recover catches, which would take the whole engine down. The build refuses the file first. Found by
// FuzzBuildManifests (reconciler/testdata/fuzz).
var ErrRecursiveAlias = errors.New("YAML alias refers to a node that contains it")

// checkAliases refuses YAML files under dir (recursively, as Flux's generator scans them) and the
// single file path, where an alias is recursive. Only files with both an anchor and an alias marker are
// parsed, so a repository without anchors costs one read per file.
func checkAliases(root, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // the generator reports unreadable paths in its own words
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		return checkAliasesIn(relPath(root, p), data)
	})
}

// checkAliasesIn checks one file's documents.
func checkAliasesIn(name string, data []byte) error {
	if !bytes.ContainsRune(data, '&') || !bytes.ContainsRune(data, '*') {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return nil // not YAML the parser reads: kustomize reports it with its own message
		}
		if n := recursiveAlias(&doc, map[*yaml.Node]bool{}); n != nil {
			return fmt.Errorf("%w: %s:%d: alias *%s is inside the node its anchor &%s names; expand it by hand or remove the alias",
				ErrRecursiveAlias, name, n.Line, n.Value, n.Value)
		}
	}
}

// recursiveAlias returns an alias node that points at one of its own ancestors (on the path in onPath).
func recursiveAlias(n *yaml.Node, onPath map[*yaml.Node]bool) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		if onPath[n.Alias] {
			return n
		}
		// An alias of a node outside the path: its own content is checked where it is defined, but a
		// cycle may run through it, so follow it once along this path.
		if onPath[n] {
			return nil
		}
		onPath[n] = true
		defer delete(onPath, n)
		return recursiveAlias(n.Alias, onPath)
	}
	onPath[n] = true
	defer delete(onPath, n)
	for _, c := range n.Content {
		if a := recursiveAlias(c, onPath); a != nil {
			return a
		}
	}
	return nil
}
