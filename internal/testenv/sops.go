package testenv

import (
	"fmt"
	"time"

	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/cmd/sops/common"
	"github.com/getsops/sops/v3/cmd/sops/formats"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keys"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/getsops/sops/v3/version"
)

// SOPSEncrypt encrypts plain for an age recipient with the SOPS library, as
// `sops --encrypt --age RECIPIENT [--encrypted-regex REGEX] --input-type FORMAT` does. format is SOPS's
// name of the file format: yaml, json, dotenv, ini or binary; regex limits encryption to matching keys
// ("" encrypts every value). Test data for the engines' spec.decryption: each test makes its own key
// with filippo.io/age.
func SOPSEncrypt(recipient, format, regex, plain string) (string, error) {
	switch format {
	case "yaml", "json", "dotenv", "ini", "binary":
	default:
		return "", fmt.Errorf("sops format %q: use yaml, json, dotenv, ini or binary", format)
	}
	store := common.StoreForFormat(formats.FormatFromString(format), config.NewStoresConfig())
	branches, err := store.LoadPlainFile([]byte(plain))
	if err != nil {
		return "", fmt.Errorf("load plain %s: %w", format, err)
	}
	mk, err := sopsage.MasterKeyFromRecipient(recipient)
	if err != nil {
		return "", err
	}
	tree := sops.Tree{Branches: branches, Metadata: sops.Metadata{KeyGroups: []sops.KeyGroup{{keys.MasterKey(mk)}},
		EncryptedRegex: regex, Version: version.Version}}
	key, errs := tree.GenerateDataKeyWithKeyServices([]keyservice.KeyServiceClient{keyservice.NewLocalClient()})
	if len(errs) > 0 {
		return "", fmt.Errorf("sops data key: %v", errs)
	}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(key, cipher)
	if err != nil {
		return "", err
	}
	tree.Metadata.LastModified = time.Now().UTC()
	if tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, key, tree.Metadata.LastModified.Format(time.RFC3339)); err != nil {
		return "", err
	}
	out, err := store.EmitEncryptedFile(tree)
	if err != nil {
		return "", err
	}
	return string(out), nil
}
