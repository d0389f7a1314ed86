package chain

import (
	"maps"
	"slices"
)

// Deep copies of the spec fields only `check` reads (the informer copies objects it hands out).

func deepCopyData(in []ExternalSecretData) []ExternalSecretData {
	if in == nil {
		return nil
	}
	out := slices.Clone(in)
	for i := range out {
		out[i].SourceRef = in[i].SourceRef.deepCopy()
	}
	return out
}

func deepCopyDataFrom(in []ExternalSecretDataFrom) []ExternalSecretDataFrom {
	if in == nil {
		return nil
	}
	out := slices.Clone(in)
	for i, d := range in {
		out[i].Extract = clonePtr(d.Extract)
		out[i].SourceRef = d.SourceRef.deepCopy()
		if f := d.Find; f != nil {
			nf := Find{Path: clonePtr(f.Path), Name: clonePtr(f.Name), Tags: maps.Clone(f.Tags)}
			out[i].Find = &nf
		}
	}
	return out
}

func (s *SourceRef) deepCopy() *SourceRef {
	if s == nil {
		return nil
	}
	return &SourceRef{StoreRef: clonePtr(s.StoreRef), GeneratorRef: clonePtr(s.GeneratorRef)}
}
