package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

const examplePolicies = "../../examples/policies"

// TestValidatePolicies: the example layout passes the example policies (exit 0); a layout that breaks
// two of them is exit 1 with a HT016 SARIF result per refusing binding, at the object's file; a policy
// folder that cannot be used is exit 2 naming the file and field.
func TestValidatePolicies(t *testing.T) {
	g := NewWithT(t)
	var out bytes.Buffer
	err := runValidate(context.Background(), &out, io.Discard, "../../examples/repos/dir-per-env/gitops-config",
		validateFlags{output: "text", failOn: "warning", files: []string{"../../examples/twin.yaml"}, policies: examplePolicies})
	g.Expect(err).NotTo(HaveOccurred(), out.String())

	out.Reset()
	err = runValidate(context.Background(), &out, io.Discard, "../../reconciler/layout/testdata/admission/fail",
		validateFlags{output: "sarif", failOn: "error", policies: examplePolicies})
	g.Expect(exitCode(err)).To(Equal(1), out.String())
	var sarif struct {
		Runs []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				Message   struct{ Text string }
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
					}
				}
			}
		}
	}
	g.Expect(json.Unmarshal(out.Bytes(), &sarif)).To(Succeed())
	var policies []string
	for _, r := range sarif.Runs[0].Results {
		g.Expect(r.RuleID).To(Equal("HT016"))
		g.Expect(r.Locations[0].PhysicalLocation.ArtifactLocation.URI).To(Equal("app/deploy.yaml"))
		policies = append(policies, r.Message.Text)
	}
	g.Expect(policies).To(ConsistOf(
		ContainSubstring("ValidatingAdmissionPolicy 'allowed-registries' with binding 'allowed-registries' denied request: images from a registry other than registry.twin.local: nginx:1.25"),
		ContainSubstring("ValidatingAdmissionPolicy 'require-memory-limits' with binding 'require-memory-limits' denied request: containers without resources.limits.memory: web")))

	bad := t.TempDir()
	g.Expect(os.WriteFile(filepath.Join(bad, "p.yaml"), []byte(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec: {policyName: p, validationAction: [Deny]}
`), 0o644)).To(Succeed())
	err = runValidate(context.Background(), io.Discard, io.Discard, "../../reconciler/layout/testdata/admission/pass",
		validateFlags{output: "text", failOn: "error", policies: bad})
	g.Expect(exitCode(err)).To(Equal(2))
	g.Expect(err.Error()).To(And(ContainSubstring("p.yaml:1"), ContainSubstring(`unknown field "validationAction"`)))
}
