package webhook

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/credchain/credchain/internal/chain"
	js "github.com/credchain/credchain/internal/jsonscan"
)

// ErrUnsupportedKind is returned for a kind the webhook does not check. The install only routes the
// kinds in SupportedKinds here, so seeing it means the ValidatingWebhookConfiguration is wider than ours.
var ErrUnsupportedKind = errors.New("unsupported kind")

// SupportedKinds are the kinds whose pods the webhook checks, keyed by kind, valued by the JSON path of
// their pod spec: the chain model's workload kinds, the same ones the guard's blast radius and
// `check` report.
var SupportedKinds = chain.WorkloadKinds

// PodRefs is what the decision needs from a pod spec. Decoding only these fields (instead of a whole
// appsv1.Deployment) keeps extraction at a few microseconds even for large manifests.
type PodRefs struct {
	// SpecPath is the pod spec's field path within the object, e.g. "spec.template.spec".
	SpecPath string
	// ImagePullSecrets are the names in the pod spec's imagePullSecrets, in order.
	ImagePullSecrets []string
	// ServiceAccountName is the pod's service account, "default" when unset (as the API server does).
	ServiceAccountName string
	// Kind is the object's kind. A Pod does not inherit its ServiceAccount's pull secrets at
	// admission: the ServiceAccount plugin has already copied them into it.
	Kind string
	// Suspended is spec.suspend of a Job or CronJob: no pods (or Jobs) are created while it is true.
	Suspended bool
	// template is the raw pod template (or pod spec) used to tell whether an UPDATE changed what
	// pods will be created from.
	template json.RawMessage
}

// InheritsServiceAccount reports whether pods made from refs receive their ServiceAccount's pull
// secrets when they name none: true for pod templates, false for a Pod under review (Kubernetes'
// ServiceAccount admission, which does the copying, runs before validating webhooks).
func (r PodRefs) InheritsServiceAccount() bool { return r.Kind != "Pod" }

type rawPodSpec struct {
	ImagePullSecrets []struct {
		Name string `json:"name"`
	} `json:"imagePullSecrets"`
	ServiceAccountName string `json:"serviceAccountName"`
	// DeprecatedServiceAccount is the old alias the API server still honours.
	DeprecatedServiceAccount string `json:"serviceAccount"`
}

type rawTemplate struct {
	Spec rawPodSpec `json:"spec"`
}

type rawWorkload struct {
	Spec struct {
		Suspend     *bool           `json:"suspend"`
		Template    json.RawMessage `json:"template"`
		JobTemplate struct {
			Spec struct {
				Template json.RawMessage `json:"template"`
			} `json:"spec"`
		} `json:"jobTemplate"`
	} `json:"spec"`
}

type rawPod struct {
	Spec json.RawMessage `json:"spec"`
}

// ExtractPodRefs decodes the pull-secret references of an object of the given kind from its JSON.
// It never panics on untrusted input (see FuzzExtractPodRefs); a missing pod template is an error
// because the API server would have rejected such an object before admission.
//
// The common case is served by a scanner that walks the JSON without decoding what it skips (the
// template's template is a sub-slice of raw, not a copy); anything it cannot walk goes through
// encoding/json, whose errors are the ones reported. FuzzExtractFastMatchesStdlib keeps the two equal.
func ExtractPodRefs(kind string, raw []byte) (PodRefs, error) {
	path, ok := SupportedKinds[kind]
	if !ok {
		return PodRefs{}, fmt.Errorf("%w %q", ErrUnsupportedKind, kind)
	}
	refs, err := extractFast(kind, path, raw)
	if err != nil {
		if refs, err = extractStd(kind, path, raw); err != nil {
			return PodRefs{}, err
		}
	}
	refs.Kind = kind
	return refs, nil
}

// suspendable are the kinds with spec.suspend.
var suspendable = map[string]bool{"Job": true, "CronJob": true}

// errMissing makes the fast path defer to encoding/json for the exact error.
var errMissing = errors.New("missing")

// extractFast is ExtractPodRefs' scanner: find the pod template (and spec.suspend), then the pod
// spec in it, then read the two fields. Any error defers to extractStd.
func extractFast(kind, path string, raw []byte) (PodRefs, error) {
	refs := PodRefs{SpecPath: path}
	tmpl, err := scanTemplate(kind, raw, &refs.Suspended)
	if err != nil || tmpl == nil || js.IsNull(tmpl) {
		return PodRefs{}, errMissing
	}
	podSpec := tmpl
	if kind != "Pod" {
		if podSpec, err = member(tmpl, "spec"); err != nil {
			return PodRefs{}, err
		}
	}
	var saName, saOld string
	if podSpec != nil {
		if err := scanPodSpec(podSpec, &refs, &saName, &saOld); err != nil {
			return PodRefs{}, err
		}
	}
	if len(refs.ImagePullSecrets) == 0 {
		refs.ImagePullSecrets = nil
	}
	refs.template = tmpl
	refs.ServiceAccountName = cmp.Or(saName, saOld, "default")
	return refs, nil
}

// scanTemplate returns the pod template of an object of kind (a Pod's spec), and sets *suspended
// from spec.suspend of a Job or CronJob. The last occurrence of a key wins, as in encoding/json.
func scanTemplate(kind string, raw []byte, suspended *bool) (tmpl []byte, err error) {
	err = js.Members(raw, func(k, v []byte) error {
		if !js.KeyIs(k, "spec") {
			return nil
		}
		tmpl = nil
		if kind == "Pod" {
			tmpl = v
			return nil
		}
		return js.Members(v, func(k, v []byte) error {
			switch {
			case suspendable[kind] && js.KeyIs(k, "suspend"):
				*suspended = false
				switch t := string(bytes.TrimSpace(v)); t {
				case "true":
					*suspended = true
				case "false", "null":
				default:
					return errMissing // not a bool: encoding/json reports it
				}
			case kind != "CronJob" && js.KeyIs(k, "template"):
				tmpl = v
			case kind == "CronJob" && js.KeyIs(k, "jobTemplate"):
				tmpl = nil
				return js.Members(v, func(k, v []byte) error {
					if !js.KeyIs(k, "spec") {
						return nil
					}
					var err error
					tmpl, err = member(v, "template") // every spec is walked, as encoding/json decodes each
					return err
				})
			}
			return nil
		})
	})
	return tmpl, err
}

// member returns the last value of key in JSON object obj, nil when absent.
func member(obj []byte, key string) (v []byte, err error) {
	err = js.Members(obj, func(k, val []byte) error {
		if js.KeyIs(k, key) {
			v = val
		}
		return nil
	})
	return v, err
}

// scanPodSpec reads imagePullSecrets names and the two service account fields of a pod spec.
func scanPodSpec(podSpec []byte, refs *PodRefs, saName, saOld *string) error {
	return js.Members(podSpec, func(k, v []byte) error {
		switch {
		case js.KeyIs(k, "imagePullSecrets"):
			refs.ImagePullSecrets = refs.ImagePullSecrets[:0]
			return js.Elements(v, func(e []byte) error {
				var name string
				if err := js.Members(e, func(k, v []byte) error {
					if js.KeyIs(k, "name") {
						return js.String(v, &name)
					}
					return nil
				}); err != nil {
					return err
				}
				refs.ImagePullSecrets = append(refs.ImagePullSecrets, name)
				return nil
			})
		case js.KeyIs(k, "serviceAccountName"):
			return js.String(v, saName)
		case js.KeyIs(k, "serviceAccount"):
			return js.String(v, saOld)
		}
		return nil
	})
}

// extractStd is ExtractPodRefs with encoding/json: the fallback and the reference for the fuzzer.
func extractStd(kind, path string, raw []byte) (PodRefs, error) {
	refs := PodRefs{SpecPath: path}
	var spec rawPodSpec
	switch kind {
	case "Pod":
		var p rawPod
		if err := json.Unmarshal(raw, &p); err != nil {
			return PodRefs{}, fmt.Errorf("decoding %s: %w", kind, err)
		}
		if isNull(p.Spec) {
			return PodRefs{}, fmt.Errorf("decoding %s: %s is missing", kind, path)
		}
		if err := json.Unmarshal(p.Spec, &spec); err != nil {
			return PodRefs{}, fmt.Errorf("decoding %s %s: %w", kind, path, err)
		}
		refs.template = p.Spec
	default:
		var w rawWorkload
		if err := json.Unmarshal(raw, &w); err != nil {
			return PodRefs{}, fmt.Errorf("decoding %s: %w", kind, err)
		}
		if suspendable[kind] && w.Spec.Suspend != nil {
			refs.Suspended = *w.Spec.Suspend
		}
		tmpl := w.Spec.Template
		if kind == "CronJob" {
			tmpl = w.Spec.JobTemplate.Spec.Template
		}
		if isNull(tmpl) {
			return PodRefs{}, fmt.Errorf("decoding %s: pod template is missing", kind)
		}
		var t rawTemplate
		if err := json.Unmarshal(tmpl, &t); err != nil {
			return PodRefs{}, fmt.Errorf("decoding %s pod template: %w", kind, err)
		}
		spec = t.Spec
		refs.template = tmpl
	}
	if len(spec.ImagePullSecrets) > 0 {
		refs.ImagePullSecrets = make([]string, len(spec.ImagePullSecrets))
		for i, s := range spec.ImagePullSecrets {
			refs.ImagePullSecrets[i] = s.Name
		}
	}
	refs.ServiceAccountName = spec.ServiceAccountName
	if refs.ServiceAccountName == "" {
		refs.ServiceAccountName = spec.DeprecatedServiceAccount
	}
	if refs.ServiceAccountName == "" {
		refs.ServiceAccountName = "default"
	}
	return refs, nil
}

// TemplateChanged reports whether an UPDATE changes what pods will be created from: the pod template
// (a `kubectl rollout restart` bumps an annotation in it) or the service account. The API server
// serializes both objects with the same encoder, so byte equality is exact for unchanged templates;
// a spurious difference only costs a re-check, never a skipped one.
func TemplateChanged(oldRefs, newRefs PodRefs) bool {
	return oldRefs.ServiceAccountName != newRefs.ServiceAccountName || !bytes.Equal(oldRefs.template, newRefs.template)
}

func isNull(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || bytes.Equal(b, []byte("null"))
}
