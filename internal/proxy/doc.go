// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package proxy is the pull-through cache and the virtual names: [Store],
// a layer of the serving chain (internal/chain) right over the index
// store, resolves the policy file's remote and virtual names into the
// repositories that hold their content, caches a remote's content as it
// is read, and refuses every write into such a name; [Upstream] is a
// small registry client that pulls manifests and blobs, following the
// Docker token flow (a 401 with a Bearer challenge, a token from its
// realm, the request again) or Basic authentication, anonymously or with
// credentials.
package proxy
