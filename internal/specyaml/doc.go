// Package specyaml decodes the project's YAML spec documents strictly: unknown fields, duplicate keys and
// type mismatches are problems naming the line and the field path, every problem of a document is
// collected (not just the first), and the line of every decoded field is kept so that later semantic
// validation can point at it too. Anchors, aliases and merge keys work; a document that expands beyond a
// node budget is refused, so a hostile file cannot make the decoder walk forever.
//
// It serves the spec packages (hardware's HCICluster and ClusterPlan, twin's Twin); it knows no kind.
// It imports only the standard library and the YAML parser.
package specyaml
