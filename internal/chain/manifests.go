package chain

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"
)

// ManifestError is a manifest credchain cannot read: the file and the line the problem is on.
type ManifestError struct {
	File string
	Line int
	Err  error
}

func (e *ManifestError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *ManifestError) Unwrap() error { return e.Err }

// maxManifestBytes bounds one file (or stdin): a GitOps repository's rendered output is megabytes,
// not gigabytes, and a runaway pipe should fail with a message, not take the CI runner's memory.
const maxManifestBytes = 256 << 20

// LoadManifests reads the chain's objects from YAML or JSON files as a GitOps repository holds them:
// each path is a file, a directory (walked recursively for *.yaml, *.yml and *.json), or "-" for
// stdin (`kustomize build | credchain check --manifests -`). Documents are separated by "---"; a
// `kind: List` is unpacked. Objects without a namespace are put in namespace, as `kubectl apply`
// does with the context's. Other kinds are skipped.
func LoadManifests(paths []string, stdin io.Reader, namespace string) (*Objects, error) {
	o := &Objects{ServiceAccounts: map[string][]string{}}
	for _, p := range paths {
		if p == "-" {
			if err := loadStream(o, "<stdin>", stdin, namespace); err != nil {
				return nil, err
			}
			continue
		}
		files, err := manifestFiles(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if err := loadFile(o, f, namespace); err != nil {
				return nil, err
			}
		}
	}
	return o, nil
}

func manifestFiles(root string) ([]string, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("reading manifests: %w", err)
	}
	if !info.IsDir() {
		return []string{root}, nil
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir // .git and friends
		}
		switch filepath.Ext(p) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading manifests: %w", err)
	}
	return files, nil
}

func loadFile(o *Objects, name, namespace string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("reading manifests: %w", err)
	}
	defer f.Close()
	return loadStream(o, name, f, namespace)
}

func loadStream(o *Objects, name string, r io.Reader, namespace string) error {
	lr := &io.LimitedReader{R: r, N: maxManifestBytes + 1}
	err := splitDocuments(bufio.NewReader(lr), func(doc []byte, line int) error {
		if lr.N <= 0 {
			return &ManifestError{File: name, Line: line, Err: fmt.Errorf("larger than %d MiB", maxManifestBytes>>20)}
		}
		if err := loadDoc(o, doc, namespace); err != nil {
			return &ManifestError{File: name, Line: line + docLine(err) - 1, Err: err}
		}
		return nil
	})
	var me *ManifestError
	if err != nil && !errors.As(err, &me) {
		return &ManifestError{File: name, Line: 1, Err: err}
	}
	return err
}

// splitDocuments calls f with each YAML document of r and the line it starts on. A document ends at
// a line that starts with "---" followed by nothing but space or a comment, as YAML's document
// marker (apimachinery's reader drops those lines without saying where a document began).
func splitDocuments(r *bufio.Reader, f func(doc []byte, line int) error) error {
	var doc bytes.Buffer
	line, start := 0, 1
	for {
		text, err := r.ReadBytes('\n')
		if len(text) > 0 {
			line++
			if isDocumentMarker(text) {
				if err := f(doc.Bytes(), start); err != nil {
					return err
				}
				doc.Reset()
				start = line + 1
			} else {
				doc.Write(text)
			}
		}
		if errors.Is(err, io.EOF) {
			return f(doc.Bytes(), start)
		}
		if err != nil {
			return err
		}
	}
}

func isDocumentMarker(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	if !ok {
		return false
	}
	rest = bytes.TrimSpace(rest)
	return len(rest) == 0 || rest[0] == '#'
}

// yamlLine finds the line sigs.k8s.io/yaml reports ("yaml: line 3: ...") within one document.
var yamlLine = regexp.MustCompile(`line (\d+):`)

// docLine is the line within its document an error is on, 1 when it does not say (the document's
// first line, which is where a wrong kind or type starts).
func docLine(err error) int {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n > 0 {
			return n
		}
	}
	return 1
}

type typeHeader struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
}

func loadDoc(o *Objects, doc []byte, namespace string) error {
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil
	}
	js, err := sigsyaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil // a document of comments only
	}
	return loadJSON(o, js, namespace)
}

func loadJSON(o *Objects, js []byte, namespace string) error {
	var h typeHeader
	if err := json.Unmarshal(js, &h); err != nil {
		return fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if h.Kind == "List" || (strings.HasSuffix(h.Kind, "List") && h.Items != nil) {
		for _, it := range h.Items {
			if err := loadJSON(o, it, namespace); err != nil {
				return err
			}
		}
		return nil
	}
	obj := newManifestObject(h)
	if obj == nil {
		return nil
	}
	if err := json.Unmarshal(js, obj); err != nil {
		return fmt.Errorf("%s: %w", h.Kind, err)
	}
	if obj.GetNamespace() == "" && h.Kind != KindClusterSecretStore {
		obj.SetNamespace(namespace)
	}
	add(o, obj)
	return nil
}

// newManifestObject is the typed object a manifest of this kind decodes into, nil for a kind the
// chain does not read.
func newManifestObject(h typeHeader) client.Object {
	group, _, _ := strings.Cut(h.APIVersion, "/")
	if group == ESOGroup {
		switch h.Kind {
		case "ExternalSecret":
			return &ExternalSecret{}
		case KindSecretStore:
			return &SecretStore{}
		case KindClusterSecretStore:
			return &ClusterSecretStore{}
		}
		return nil
	}
	switch h.APIVersion + " " + h.Kind {
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1 Pod":
		return &corev1.Pod{}
	case "v1 ReplicationController":
		return &corev1.ReplicationController{}
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}
	case "apps/v1 DaemonSet":
		return &appsv1.DaemonSet{}
	case "apps/v1 ReplicaSet":
		return &appsv1.ReplicaSet{}
	case "batch/v1 Job":
		return &batchv1.Job{}
	case "batch/v1 CronJob":
		return &batchv1.CronJob{}
	}
	return nil
}

// add files a decoded object under its place in o.
func add(o *Objects, obj client.Object) {
	switch x := obj.(type) {
	case *ExternalSecret:
		o.ExternalSecrets = append(o.ExternalSecrets, x)
	case *SecretStore:
		o.Stores = append(o.Stores, StoreFromSecretStore(x))
	case *ClusterSecretStore:
		o.Stores = append(o.Stores, StoreFromClusterSecretStore(x))
	case *corev1.ServiceAccount:
		o.AddServiceAccount(x.Namespace, x.Name, accountPullSecrets(x))
	default:
		if w, ok := WorkloadOf(obj, false); ok {
			o.Workloads = append(o.Workloads, w)
		}
	}
}
