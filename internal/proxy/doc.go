// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package proxy is the pull-through cache's side facing upstream
// registries (issue 10, in progress): a small registry client that pulls
// manifests and blobs, following the Docker token flow (a 401 with a
// Bearer challenge, a token from its realm, the request again) or Basic
// authentication, anonymously or with credentials.
package proxy
