package hardware

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hybridtwin/hybridtwin/internal/specyaml"
)

// APIVersion is the schema version of HCICluster and ClusterPlan documents.
const APIVersion = "hybridtwin.io/v1alpha1"

// Document kinds.
const (
	KindHCICluster  = "HCICluster"
	KindClusterPlan = "ClusterPlan"
)

// positions maps a field path (spec.hosts[1].cores) to its line, for validation errors after decoding.
type positions = specyaml.Positions

func problemError(file string, p specyaml.Problem) *SpecError {
	return &SpecError{File: file, Line: p.Line, Field: p.Field, Msg: p.Msg}
}

// rawDoc is one YAML document of a file, not yet decoded into its kind.
type rawDoc struct {
	file string
	doc  specyaml.Document
}

// splitDocs parses data into its YAML documents and checks each one's apiVersion and kind.
func splitDocs(file string, data []byte) ([]rawDoc, error) {
	docs, p := specyaml.Split(data)
	if p != nil {
		return nil, problemError(file, *p)
	}
	var out []rawDoc
	for _, d := range docs {
		if err := checkHeader(file, d); err != nil {
			return nil, err
		}
		out = append(out, rawDoc{file: file, doc: d})
	}
	return out, nil
}

func checkHeader(file string, d specyaml.Document) error {
	if d.APIVersion != APIVersion {
		return &SpecError{File: file, Line: d.Line, Field: "apiVersion", Msg: fmt.Sprintf("is %q; write apiVersion: %s", d.APIVersion, APIVersion)}
	}
	if d.Kind != KindHCICluster && d.Kind != KindClusterPlan {
		return &SpecError{File: file, Line: d.Line, Field: "kind", Msg: fmt.Sprintf("is %q; expected %s (an inventory) or %s (a plan)", d.Kind, KindHCICluster, KindClusterPlan)}
	}
	return nil
}

// decodeDoc decodes strictly; with several problems it reports the first (the capacity command's users
// fix one at a time; the twin spec, which reports all at once, decodes through FromDocuments).
func decodeDoc(doc rawDoc, into any) (positions, error) {
	pos, problems := specyaml.Decode(doc.doc.Node, into)
	if len(problems) > 0 {
		return nil, problemError(doc.file, problems[0])
	}
	return pos, nil
}

// FromDocuments decodes and validates the HCICluster and ClusterPlan documents among docs (others are
// ignored) read from file: how a Twin spec, which may inline them, hands them to the model.
func FromDocuments(file string, docs []specyaml.Document) (*Inventory, *Plan, error) {
	var raws []rawDoc
	for _, d := range docs {
		if d.Kind != KindHCICluster && d.Kind != KindClusterPlan {
			continue
		}
		if err := checkHeader(file, d); err != nil {
			return nil, nil, err
		}
		raws = append(raws, rawDoc{file: file, doc: d})
	}
	return decodeAll(raws)
}

// ParseInventory parses one HCICluster document (file names the source in errors) and validates it.
func ParseInventory(file string, data []byte) (*Inventory, error) {
	inv, _, err := parseDocs(file, data)
	if err != nil {
		return nil, err
	}
	if inv == nil {
		return nil, &SpecError{File: file, Msg: "no " + KindHCICluster + " document; an inventory starts with apiVersion: " + APIVersion + " and kind: " + KindHCICluster}
	}
	return inv, nil
}

// ParsePlan parses one ClusterPlan document. It is checked against a profile when evaluated.
func ParsePlan(file string, data []byte) (*Plan, error) {
	_, plan, err := parseDocs(file, data)
	if err != nil {
		return nil, err
	}
	if plan == nil {
		return nil, &SpecError{File: file, Msg: "no " + KindClusterPlan + " document; a plan starts with apiVersion: " + APIVersion + " and kind: " + KindClusterPlan}
	}
	return plan, nil
}

func parseDocs(file string, data []byte) (*Inventory, *Plan, error) {
	docs, err := splitDocs(file, data)
	if err != nil {
		return nil, nil, err
	}
	return decodeAll(docs)
}

func decodeAll(docs []rawDoc) (*Inventory, *Plan, error) {
	var inv *Inventory
	var plan *Plan
	for _, doc := range docs {
		switch doc.doc.Kind {
		case KindHCICluster:
			if inv != nil {
				return nil, nil, &SpecError{File: doc.file, Line: doc.doc.Line, Field: "kind", Msg: fmt.Sprintf("a second %s (the first is in %s); give exactly one inventory", KindHCICluster, inv.File)}
			}
			inv = &Inventory{}
			pos, err := decodeDoc(doc, inv)
			if err != nil {
				return nil, nil, err
			}
			inv.File, inv.pos = doc.file, pos
			if err := inv.validate(); err != nil {
				return nil, nil, err
			}
		case KindClusterPlan:
			if plan != nil {
				return nil, nil, &SpecError{File: doc.file, Line: doc.doc.Line, Field: "kind", Msg: fmt.Sprintf("a second %s (the first is in %s); put all workload clusters in one plan", KindClusterPlan, plan.File)}
			}
			plan = &Plan{}
			pos, err := decodeDoc(doc, plan)
			if err != nil {
				return nil, nil, err
			}
			plan.File, plan.pos = doc.file, pos
			if err := plan.validateShape(); err != nil {
				return nil, nil, err
			}
		}
	}
	return inv, plan, nil
}

// LoadFiles reads the named files (each may hold several YAML documents) and returns the one inventory and
// the optional plan among them. It is the package's only I/O.
func LoadFiles(paths ...string) (*Inventory, *Plan, error) {
	var all []rawDoc
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, &SpecError{File: p, Msg: fmt.Sprintf("cannot read: %v", errors.Unwrap(err))}
		}
		docs, err := splitDocs(p, data)
		if err != nil {
			return nil, nil, err
		}
		if len(docs) == 0 {
			return nil, nil, &SpecError{File: p, Msg: "holds no YAML document"}
		}
		all = append(all, docs...)
	}
	inv, plan, err := decodeAll(all)
	if err != nil {
		return nil, nil, err
	}
	if inv == nil {
		return nil, nil, &SpecError{File: strings.Join(paths, ", "), Msg: "no " + KindHCICluster + " inventory among the files; pass one with -f"}
	}
	return inv, plan, nil
}
