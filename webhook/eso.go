package webhook

import "github.com/credchain/credchain/internal/chain"

// ExternalSecret is ESO's ExternalSecret as credchain's chain model decodes it. It is part of the
// decision's public surface (Lookup returns it, so code embedding the Decider can implement Lookup
// and fill the fields it reads), which is why the one internal type is named here; the rest of the
// model stays internal.
type ExternalSecret = chain.ExternalSecret
