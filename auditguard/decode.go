package auditguard

import js "github.com/credchain/credchain/internal/jsonscan"

// The fast entry decoder. encoding/json walks every byte of an entry through reflection, including
// the response object and the request's headers and data, which the guard never reads; on the 2-core
// machines this runs on that capped relevant-entry ingest near 17k lines/s. This decoder walks the
// object with a byte scanner, skips the members it does not need, and unquotes the few strings it
// does. It accepts exactly what encoding/json would produce for these fields on valid JSON
// (FuzzDecodeEntryMatchesStdlib checks), and falls back to encoding/json for anything unusual
// (escaped strings, non-string values). The scanner itself lives in internal/jsonscan, shared with
// the webhook's pod spec extraction.

// decodeFast fills e from line. It returns jsonscan.ErrSyntax when the line is not a JSON object it can walk.
func decodeFast(line []byte, e *Entry) error {
	return js.Members(line, func(key, val []byte) error {
		switch {
		case js.KeyIs(key, "auth"):
			return js.Members(val, func(k, v []byte) error {
				switch {
				case js.KeyIs(k, "accessor"):
					return js.String(v, &e.Auth.Accessor)
				case js.KeyIs(k, "display_name"):
					return js.String(v, &e.Auth.DisplayName)
				case js.KeyIs(k, "entity_id"):
					return js.String(v, &e.Auth.EntityID)
				case js.KeyIs(k, "policies"):
					return js.Std(v, &e.Auth.Policies)
				case js.KeyIs(k, "token_policies"):
					return js.Std(v, &e.Auth.TokenPolicies)
				case js.KeyIs(k, "metadata"):
					return js.Std(v, &e.Auth.Metadata)
				}
				return nil
			})
		case js.KeyIs(key, "request"):
			return js.Members(val, func(k, v []byte) error {
				switch {
				case js.KeyIs(k, "id"):
					return js.String(v, &e.Request.ID)
				case js.KeyIs(k, "operation"):
					return js.String(v, &e.Request.Operation)
				case js.KeyIs(k, "path"):
					return js.String(v, &e.Request.Path)
				case js.KeyIs(k, "remote_address"):
					return js.String(v, &e.Request.RemoteAddress)
				case js.KeyIs(k, "mount_type"):
					return js.String(v, &e.Request.MountType)
				case js.KeyIs(k, "mount_point"):
					return js.String(v, &e.Request.MountPoint)
				case js.KeyIs(k, "namespace"):
					return js.Std(v, &e.Request.Namespace)
				}
				return nil
			})
		case js.KeyIs(key, "error"):
			return js.String(val, &e.Error)
		case js.KeyIs(key, "type"):
			return js.String(val, &e.Type)
		case js.KeyIs(key, "time"):
			return js.Std(val, &e.Time)
		}
		return nil
	})
}
