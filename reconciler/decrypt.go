package reconciler

// SOPS decryption (spec.decryption) as kustomize-controller v1.9.5 does it (internal/decryptor), with
// the same library and versions (github.com/getsops/sops/v3 v3.13.2, filippo.io/age v1.3.1): keys come
// from the data of the Secret spec.decryption.secretRef names, in the Kustomization's namespace; the
// files secretGenerators (files and envs) and patches refer to are decrypted before kustomize reads
// them; each built object with a sops stanza is decrypted whole, and each Secret data value that is
// itself a SOPS file (a generated Secret) is decrypted in the format its key names. Errors read as
// kustomize-controller's, with its BuildFailed reason.
//
// The twin decrypts with age keys (".agekey" entries) only. PGP keys (".asc") would need a GnuPG home
// and the gpg binary and agent per reconcile, so an ".asc" entry is refused with the entry named; cloud
// KMS and Vault credentials ("sops.aws-kms", "sops.azure-kv", "sops.gcp-kms", "sops.vault-token") are
// not read, since those services cannot run here; a file encrypted only for them fails to decrypt as
// under kustomize-controller without credentials. The controller-wide --sops-age-secret fallback is
// not modelled: spec.decryption.secretRef is required.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	securejoin "github.com/cyphar/filepath-securejoin"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/cmd/sops/common"
	"github.com/getsops/sops/v3/cmd/sops/formats"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/getsops/sops/v3/logging"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/resource"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/hybridtwin/hybridtwin/reconciler/internal/build"
)

// Constants of kustomize-controller v1.9.5 internal/decryptor.
const (
	decryptionProviderSOPS = "sops"
	decryptionAgeExt       = ".agekey"
	decryptionPGPExt       = ".asc"
	// maxEncryptedFileSize: the largest file it decrypts (maxEncryptedFileSize, 5 MiB).
	maxEncryptedFileSize int64 = 5 << 20
	// decryptAnnotation set to "disabled" on an object leaves it encrypted (IsDecryptionDisabled).
	decryptAnnotation = "kustomize.toolkit.fluxcd.io/decrypt"
)

var (
	// sopsFormatName names formats in messages as kustomize-controller's sopsFormatToString does.
	sopsFormatName = map[formats.Format]string{formats.Binary: "binary", formats.Dotenv: "dotenv",
		formats.Ini: "INI", formats.Json: "JSON", formats.Yaml: "YAML"}
	// sopsMarkers tell an encrypted file of each format (its MAC line), as sopsFormatToMarkerBytes.
	// Binary files are a JSON envelope at rest, so they share JSON's marker; detection tries them in
	// sopsMarkerOrder, JSON before Binary, so a detected JSON envelope is read as JSON.
	sopsMarkers = map[formats.Format][]byte{formats.Binary: []byte(`"mac": "ENC[`),
		formats.Dotenv: []byte("sops_mac=ENC["), formats.Ini: []byte("[sops]"),
		formats.Json: []byte(`"mac": "ENC[`), formats.Yaml: []byte("mac: ENC[")}
	sopsMarkerOrder = []formats.Format{formats.Json, formats.Yaml, formats.Dotenv, formats.Ini, formats.Binary}

	quietSOPS sync.Once
)

// sopsDecryptor decrypts for one build of one Kustomization.
type sopsDecryptor struct {
	keys []keyservice.KeyServiceClient
}

var _ build.Decryptor = (*sopsDecryptor)(nil)

// decryptorFor returns the decryptor of a Kustomization with spec.decryption, or nil without it. It reads
// the key Secret through kube, the Kustomization's own cluster (also for a remote spec.kubeConfig, as
// kustomize-controller reads it with its own client). A missing Secret is returned as the API's
// NotFound error unwrapped, as kustomize-controller's ImportKeys does.
func decryptorFor(ctx context.Context, kube client.Client, o *kustomizev1.Kustomization) (*sopsDecryptor, error) {
	d := o.Spec.Decryption
	if d == nil || d.SecretRef == nil {
		// Without a secretRef kustomize-controller has no keys unless run with --sops-age-secret; the
		// twin rejects that spec at validation, so nil here is "no decryption".
		return nil, nil
	}
	quietSOPS.Do(func() { logging.SetLevel(0) }) // as kustomize-controller's key service: sops logs nothing
	name := types.NamespacedName{Namespace: o.Namespace, Name: d.SecretRef.Name}
	var secret corev1.Secret
	if err := kube.Get(ctx, name, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, err
		}
		return nil, fmt.Errorf("cannot get %s decryption Secret '%s': %w", d.Provider, name, err)
	}
	var ids sopsage.ParsedIdentities
	for _, key := range sortedSecretKeys(secret.Data) {
		switch filepath.Ext(key) {
		case decryptionAgeExt:
			if err := ids.Import(string(secret.Data[key])); err != nil {
				return nil, fmt.Errorf("failed to import '%s' data from %s decryption Secret '%s': %w", key, d.Provider, name, err)
			}
		case decryptionPGPExt:
			return nil, fmt.Errorf("failed to import '%s' data from %s decryption Secret '%s': PGP keys are not supported by the twin's reconciler; encrypt for an age recipient and store its key as an entry ending in %s",
				key, d.Provider, name, decryptionAgeExt)
		}
	}
	return &sopsDecryptor{keys: []keyservice.KeyServiceClient{keyservice.NewCustomLocalClient(ageKeyService{ids: ids})}}, nil
}

func sortedSecretKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ageKeyService serves SOPS data-key decryption with the imported age identities, as
// kustomize-controller's key service server does for age keys. Other key types are refused: their
// services do not run in the twin.
type ageKeyService struct {
	ids sopsage.ParsedIdentities
}

func (s ageKeyService) Decrypt(_ context.Context, req *keyservice.DecryptRequest) (*keyservice.DecryptResponse, error) {
	k, ok := req.GetKey().GetKeyType().(*keyservice.Key_AgeKey)
	if !ok {
		return nil, fmt.Errorf("key type %T is not served by the twin's reconciler, which decrypts with age keys only", req.GetKey().GetKeyType())
	}
	if len(s.ids) == 0 {
		// With no identities SOPS would look for the host's (SOPS_AGE_KEY*, the user's keys.txt, ~/.ssh):
		// the engine decrypts with the Secret's keys only, as kustomize-controller in its pod does.
		return nil, fmt.Errorf("failed to load age identities: the decryption Secret has no entry ending in %s", decryptionAgeExt)
	}
	mk := &sopsage.MasterKey{Recipient: k.AgeKey.Recipient, EncryptedKey: string(req.GetCiphertext())}
	s.ids.ApplyToMasterKey(mk)
	plain, err := mk.Decrypt()
	if err != nil {
		return nil, err
	}
	return &keyservice.DecryptResponse{Plaintext: plain}, nil
}

func (s ageKeyService) Encrypt(context.Context, *keyservice.EncryptRequest) (*keyservice.EncryptResponse, error) {
	return nil, errors.New("the twin's reconciler does not encrypt")
}

// decrypt loads SOPS-encrypted data in format in, gets its data key from the age identities and
// returns the plain text in format out, with kustomize-controller's messages (SopsDecryptWithFormat).
// The MAC is not checked, as kustomize-controller does not by default (generators and kustomize
// rewrite the documents it covers).
func (d *sopsDecryptor) decrypt(data []byte, in, out formats.Format) (_ []byte, err error) {
	defer func() {
		// Malformed input can make SOPS panic; it is returned as an error, as kustomize-controller does.
		if p := recover(); p != nil {
			err = fmt.Errorf("failed to emit encrypted %s file as decrypted %s: %v", sopsFormatName[in], sopsFormatName[out], p)
		}
	}()
	tree, err := common.StoreForFormat(in, config.NewStoresConfig()).LoadEncryptedFile(data)
	if err != nil {
		return nil, sopsUserErr(fmt.Sprintf("failed to load encrypted %s data", sopsFormatName[in]), err)
	}
	key, err := tree.Metadata.GetDataKeyWithKeyServices(d.keys, sops.DefaultDecryptionOrder)
	if err != nil {
		return nil, sopsUserErr("cannot get sops data key", err)
	}
	if _, err := tree.Decrypt(key, aes.NewCipher()); err != nil {
		return nil, sopsUserErr("error decrypting sops tree", redactSOPS(err))
	}
	plain, err := common.StoreForFormat(out, config.NewStoresConfig()).EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, sopsUserErr(fmt.Sprintf("failed to emit encrypted %s file as decrypted %s", sopsFormatName[in], sopsFormatName[out]), err)
	}
	return plain, nil
}

// sopsUserErr prefers SOPS's user-facing text of an error (sops.UserError), as kustomize-controller.
func sopsUserErr(msg string, err error) error {
	var ue sops.UserError
	if errors.As(err, &ue) {
		err = errors.New(ue.UserError())
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// redactSOPS keeps a value out of SOPS's "Input string ... does not match sops' data format" error
// (kustomize-controller's safeDecrypt).
func redactSOPS(err error) error {
	const prefix, suffix = "Input string ", " does not match sops' data format"
	msg := err.Error()
	i, j := strings.Index(msg, prefix), strings.Index(msg, suffix)
	if i < 0 || j < 0 {
		return err
	}
	return errors.New(msg[:i] + prefix + "<redacted>" + suffix)
}

// Resource decrypts one built object (DecryptResource): whole when it carries a sops stanza with a MAC,
// else, for a Secret, each data value that is a SOPS file, in the format of its key's extension.
func (d *sopsDecryptor) Resource(r *resource.Resource) error {
	if strings.EqualFold(r.GetAnnotations()[decryptAnnotation], kustomizev1.DisabledValue) {
		return nil
	}
	if f := r.Field("sops"); !f.IsNilOrEmpty() && !f.Value.Field("mac").IsNilOrEmpty() {
		in, err := r.MarshalJSON()
		if err != nil {
			return err
		}
		out, err := d.decrypt(in, formats.Json, formats.Json)
		if err != nil {
			return fmt.Errorf("failed to decrypt and format '%s/%s' %s data: %w", r.GetNamespace(), r.GetName(), r.GetKind(), err)
		}
		if err := r.UnmarshalJSON(out); err != nil {
			return fmt.Errorf("failed to unmarshal decrypted '%s/%s' %s to JSON: %w", r.GetNamespace(), r.GetName(), r.GetKind(), err)
		}
		return nil
	}
	if r.GetKind() != "Secret" {
		return nil
	}
	data := r.GetDataMap()
	for _, key := range sortedStringKeys(data) {
		raw, err := base64.StdEncoding.DecodeString(data[key])
		if err != nil {
			continue // kustomize-controller leaves bad base64 to fail at apply
		}
		in, ok := detectSOPSFormat(raw)
		if !ok {
			continue
		}
		out, err := d.decrypt(raw, in, formatForPath(key))
		if err != nil {
			return fmt.Errorf("failed to decrypt and format '%s/%s' Secret field '%s': %w", r.GetNamespace(), r.GetName(), key, err)
		}
		data[key] = base64.StdEncoding.EncodeToString(out)
	}
	r.SetDataMap(data)
	return nil
}

func sortedStringKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func detectSOPSFormat(b []byte) (formats.Format, bool) {
	for _, f := range sopsMarkerOrder {
		if bytes.Contains(b, sopsMarkers[f]) {
			return f, true
		}
	}
	return 0, false
}

// formatForPath is SOPS's format for a file name, with .dockerconfigjson read as JSON.
func formatForPath(p string) formats.Format {
	if strings.HasSuffix(p, corev1.DockerConfigJsonKey) {
		return formats.Json
	}
	return formats.FormatForPath(p)
}

// Sources decrypts, in fs, the files that the secretGenerators (files and envs) and patches of the
// kustomization file in dir, and of every kustomization it reaches through resources and components,
// refer to (DecryptSources). A file without its format's SOPS marker is left as it is. References that
// leave root are confined to it, as kustomize-controller's secure joins do.
func (d *sopsDecryptor) Sources(fs filesys.FileSystem, root, dir string) error {
	return d.sourcesOf(fs, root, dir, map[string]bool{}, map[string]bool{})
}

func (d *sopsDecryptor) sourcesOf(fs filesys.FileSystem, root, dir string, visited, done map[string]bool) error {
	abs, err := securejoin.SecureJoin(root, relTo(root, dir))
	if err != nil || visited[abs] {
		return err
	}
	visited[abs] = true
	if fi, err := os.Lstat(abs); err != nil || !fi.IsDir() {
		return nil // a file or a URL: not a kustomization directory (errRecurseIgnore)
	}
	kus, err := loadKustomizationFile(fs, dir)
	if err != nil {
		return err
	}
	visit := func(ref string, f formats.Format) error {
		if !filepath.IsAbs(ref) {
			ref = filepath.Join(dir, ref)
		}
		return d.sourceFile(fs, root, ref, f, done)
	}
	for _, g := range kus.SecretGenerator {
		for _, src := range g.FileSources {
			key, file, found := strings.Cut(src, "=")
			if !found {
				file = key
			}
			if err := visit(file, formatForPath(key)); err != nil {
				return err
			}
		}
		for _, env := range g.EnvSources {
			f := formatForPath(env)
			if f == formats.Binary {
				f = formats.Dotenv
			}
			if err := visit(env, f); err != nil {
				return err
			}
		}
	}
	for _, p := range kus.Patches {
		if p.Path == "" || strings.Contains(p.Path, "://") {
			continue
		}
		if err := visit(p.Path, formatForPath(p.Path)); err != nil {
			return err
		}
	}
	for _, res := range append(append([]string{}, kus.Resources...), kus.Components...) {
		if !filepath.IsAbs(res) {
			res = filepath.Join(dir, res)
		}
		if err := d.sourcesOf(fs, root, res, visited, done); err != nil {
			return err
		}
	}
	return nil
}

// sourceFile decrypts one referenced file into fs (sopsDecryptFile): it must be a regular file within
// maxEncryptedFileSize.
func (d *sopsDecryptor) sourceFile(fs filesys.FileSystem, root, file string, f formats.Format, done map[string]bool) error {
	rel := relTo(root, file)
	abs, err := securejoin.SecureJoin(root, rel)
	if err != nil {
		return err
	}
	if done[abs] {
		return nil
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return fmt.Errorf("lstat %s: %w", rel, errors.Unwrap(err))
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: cannot decrypt irregular file as it has file mode type bits set", rel)
	}
	if fi.Size() > maxEncryptedFileSize {
		return fmt.Errorf("%s: cannot decrypt file with size (%d bytes) exceeding limit (%d)", rel, fi.Size(), maxEncryptedFileSize)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return err
	}
	if !bytes.Contains(data, sopsMarkers[f]) {
		return nil
	}
	out, err := d.decrypt(data, f, f)
	if err != nil {
		return err
	}
	// The decrypted text goes where kustomize will read the file: the joined path under the build's
	// root, which the overlay keys by its absolute form.
	if err := fs.WriteFile(filepath.Join(root, rel), out); err != nil {
		return fmt.Errorf("error writing sops decrypted %s data to %s file: %w", sopsFormatName[f], sopsFormatName[f], err)
	}
	done[abs] = true
	return nil
}

// relTo returns p relative to root, confined to it: an absolute path outside root, or one that climbs
// out with "..", is taken as relative to root (kustomize-controller's stripRoot and secure join).
func relTo(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return r
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(string(filepath.Separator) + p)[1:]
	}
	return filepath.Clean(p)
}

// loadKustomizationFile reads dir's kustomization file through fs (which holds the generated one where
// the directory has none), refusing a directory with several.
func loadKustomizationFile(fs filesys.FileSystem, dir string) (*kustypes.Kustomization, error) {
	var found string
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		p := filepath.Join(dir, n)
		if fs.Exists(p) && !fs.IsDir(p) {
			if found != "" {
				return nil, fmt.Errorf("found multiple kustomization files")
			}
			found = p
		}
	}
	if found == "" {
		return nil, fmt.Errorf("no kustomization file found")
	}
	data, err := fs.ReadFile(found)
	if err != nil {
		return nil, fmt.Errorf("failed to read kustomization file: %w", err)
	}
	var kus kustypes.Kustomization
	if err := yaml.Unmarshal(data, &kus); err != nil {
		return nil, fmt.Errorf("failed to unmarshal kustomization file from '%s': %w", found, err)
	}
	return &kus, nil
}

// encryptedSecret returns kustomize-controller's refusal for an object still SOPS-encrypted when it is
// about to be applied (a Secret v1 with a sops field, decryption not disabled on it): kustomize-controller
// checks this before its apply, whatever spec.decryption says, and reports ReconciliationFailed.
func encryptedSecret(objs []*unstructured.Unstructured) error {
	for _, u := range objs {
		if u.GetKind() != "Secret" || u.GetAPIVersion() != "v1" ||
			strings.EqualFold(u.GetAnnotations()[decryptAnnotation], kustomizev1.DisabledValue) {
			continue
		}
		if _, ok := u.Object["sops"]; ok {
			return fmt.Errorf("%s is SOPS encrypted, configuring decryption is required for this secret to be reconciled",
				ssautil.FmtUnstructured(u))
		}
	}
	return nil
}
