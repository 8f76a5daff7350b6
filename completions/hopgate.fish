function __hopgate_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __hopgate_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __hopgate_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __hopgate_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __hopgate_parse_tokens -S
    set -l unparsed_tokens (__hopgate_tokens -pc)
    switch $unparsed_tokens[1]
    case 'hopgate'
        __hopgate_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'serve'
            __hopgate_parse_subcommand 0 'database=' 'database-timeout=' 'log-level=' 'log-format=' 'acme-directory=' 'acme-staging' 'acme-email=' 'acme-agree-tos' 'acme-ca-file=' 'acme-challenge=' 'domain=' 'https-listen=' 'http-listen=' 'http-proxy' 'dtls-listen=' 'metrics-listen=' 'admin-key=' 'tls-certificate=' 'tls-key=' 'upstream-timeout=' 'header-timeout=' 'max-body-bytes=' 'trust-forwarded=' 'shutdown-grace=' 'threads=' 'cert-refresh-interval=' 'acme-retry-delay=' 'dev' 'migrate' 'version' 'h/help'
        case 'connect'
            __hopgate_parse_subcommand 0 'database=' 'database-timeout=' 'log-level=' 'log-format=' 'server=' 'domain=' 'key=' 'to=' 'route=+' 'ca-file=' 'server-fingerprint=' 'server-name=' 'insecure' 'version' 'h/help'
        case 'domain'
            __hopgate_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'add'
                __hopgate_parse_subcommand 1 'database=' 'database-timeout=' 'log-level=' 'log-format=' 'server=' 'admin-key=' 'admin-ca-file=' 'admin-insecure' 'memo=' 'json' 'version' 'h/help'
            case 'rm'
                __hopgate_parse_subcommand 1 'database=' 'database-timeout=' 'log-level=' 'log-format=' 'server=' 'admin-key=' 'admin-ca-file=' 'admin-insecure' 'key=' 'force' 'json' 'version' 'h/help'
            case 'ls'
                __hopgate_parse_subcommand 0 'database=' 'database-timeout=' 'log-level=' 'log-format=' 'server=' 'admin-key=' 'admin-ca-file=' 'admin-insecure' 'json' 'version' 'h/help'
            end
        case 'cert'
            __hopgate_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'ls'
                __hopgate_parse_subcommand 0 'database=' 'database-timeout=' 'log-level=' 'log-format=' 'json' 'version' 'h/help'
            case 'renew'
                __hopgate_parse_subcommand 0 'database=' 'database-timeout=' 'log-level=' 'log-format=' 'acme-directory=' 'acme-staging' 'acme-email=' 'acme-agree-tos' 'acme-ca-file=' 'acme-challenge=' 'domain=' 'force' 'version' 'h/help'
            end
        case 'migrate'
            __hopgate_parse_subcommand 0 'database=' 'database-timeout=' 'log-level=' 'log-format=' 'status' 'json' 'version' 'h/help'
        case 'keygen'
            __hopgate_parse_subcommand 0 'hash' 'json' 'version' 'h/help'
        case 'help'
            __hopgate_parse_subcommand -r 1 'version'
        end
    end
end

function __hopgate_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __hopgate_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __hopgate_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __hopgate_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__hopgate_tokens -p)
    if test -z "$(__hopgate_tokens -t)"
        set -l index (count (__hopgate_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'hopgate' -f
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate" version' -l 'version' -d 'Show the version.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_positional "hopgate" -eq 1' -fa 'serve' -d 'Run the edge: HTTPS and HTTP listeners, the DTLS tunnel listener, the admin API and metrics.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_positional "hopgate" -eq 1' -fa 'connect' -d 'Dial the edge over DTLS and serve its requests from local services.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_positional "hopgate" -eq 1' -fa 'domain' -d 'Register, unregister and list domains.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_positional "hopgate" -eq 1' -fa 'cert' -d 'List and renew the edge\'s certificates (kept in the store; a running edge picks changes up).'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_positional "hopgate" -eq 1' -fa 'migrate' -d 'Apply pending database migrations (a second run does nothing).'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_positional "hopgate" -eq 1' -fa 'keygen' -d 'Print a new random key (32 bytes, 64 hex characters).'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_positional "hopgate" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" database' -l 'database' -d 'Where domains are stored: sqlite:PATH or postgres://USER@HOST:PORT/DB (any libpq URL). Default: sqlite:/var/lib/hopgate/hopgate.db. (env: HOPGATE_DATABASE, HOP_DB_DSN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" database-timeout' -l 'database-timeout' -d 'How long to keep retrying an unreachable database before failing (exit 69). Default: 10. (env: HOPGATE_DATABASE_TIMEOUT)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" log-level' -l 'log-level' -d 'trace, debug, info, notice, warning, error or critical. Default: info. (env: HOPGATE_LOG_LEVEL)' -rfka 'trace debug info notice warning error critical'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" log-format' -l 'log-format' -d 'text or json (one object a line). Default: text. (env: HOPGATE_LOG_FORMAT)' -rfka 'text json'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" acme-directory' -l 'acme-directory' -d 'The ACME directory URL. Default: Let\'s Encrypt production. (env: HOPGATE_ACME_DIRECTORY)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" acme-staging' -l 'acme-staging' -d 'Use Let\'s Encrypt\'s staging directory (untrusted certificates, generous limits). (env: HOPGATE_ACME_STAGING)'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" acme-email' -l 'acme-email' -d 'The account\'s contact email, for the CA\'s expiry notices. (env: HOPGATE_ACME_EMAIL)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" acme-agree-tos' -l 'acme-agree-tos' -d 'Agree to the CA\'s terms of service (required to get certificates). (env: HOPGATE_ACME_AGREE_TOS)'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" acme-ca-file' -l 'acme-ca-file' -d 'A PEM CA file to trust for the ACME server\'s own HTTPS (a test CA such as Pebble\'s). (env: HOPGATE_ACME_CA_FILE)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" acme-challenge' -l 'acme-challenge' -d 'How to prove control of a name: http-01 (the CA fetches http://NAME/.well-known/acme-challenge/ on port 80) or tls-alpn-01 (the CA connects to port 443). Default: http-01. (env: HOPGATE_ACME_CHALLENGE)' -rfka 'http-01 tls-alpn-01'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" domain' -l 'domain' -d 'The main (control) domain: the admin API is served on it. Default in --dev: edge.localhost. (env: HOPGATE_DOMAIN, HOP_SERVER_DOMAIN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" https-listen' -l 'https-listen' -d 'The HTTPS listener. Default: :443 (:8443 on loopback in --dev). (env: HOPGATE_HTTPS_LISTEN, HOP_SERVER_HTTPS_LISTEN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" http-listen' -l 'http-listen' -d 'The HTTP listener (ACME challenges, and redirects to HTTPS), or off. Default: :80 (:8080 in --dev). (env: HOPGATE_HTTP_LISTEN, HOP_SERVER_HTTP_LISTEN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" http-proxy' -l 'http-proxy' -d 'The HTTP listener forwards requests to clients, as the HTTPS one does, instead of redirecting them to HTTPS: behind a load balancer that terminates TLS, or for tests on one machine. The admin API stays on HTTPS. (env: HOPGATE_HTTP_PROXY=1)'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" dtls-listen' -l 'dtls-listen' -d 'The DTLS (UDP) listener clients dial. Default: :443 (:8443 in --dev). (env: HOPGATE_DTLS_LISTEN, HOP_SERVER_DTLS_LISTEN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" metrics-listen' -l 'metrics-listen' -d 'The Prometheus listener (GET /metrics), or off. Default: 127.0.0.1:9090. (env: HOPGATE_METRICS_LISTEN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" admin-key' -l 'admin-key' -d 'The admin API key, or its Argon2id hash from `hopgate keygen --hash`. Without one the admin API is off (--dev makes one and prints it). (env: HOPGATE_ADMIN_KEY, HOP_ADMIN_API_KEY)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" tls-certificate' -l 'tls-certificate' -d 'A PEM certificate chain for the main domain (and any names it covers). (env: HOPGATE_TLS_CERTIFICATE)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" tls-key' -l 'tls-key' -d 'The PEM private key for --tls-certificate. (env: HOPGATE_TLS_KEY)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" upstream-timeout' -l 'upstream-timeout' -d 'Seconds to wait for a response head before answering 504. Default: 60. (env: HOPGATE_UPSTREAM_TIMEOUT)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" header-timeout' -l 'header-timeout' -d 'Seconds a connection may take to send a request\'s head before it is closed (slowloris). Default: 10. (env: HOPGATE_HEADER_TIMEOUT)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" max-body-bytes' -l 'max-body-bytes' -d 'The largest request body in bytes (larger: 413). Default: no limit. (env: HOPGATE_MAX_BODY_BYTES)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" trust-forwarded' -l 'trust-forwarded' -d 'X-Forwarded-For and Forwarded from clients: none (replace them) or all (append: the edge is behind a trusted proxy). Default: none. (env: HOPGATE_TRUST_FORWARDED)' -rfka 'none all'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" shutdown-grace' -l 'shutdown-grace' -d 'Seconds in-flight requests may run on after SIGTERM. Default: 30. (env: HOPGATE_SHUTDOWN_GRACE)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" threads' -l 'threads' -d 'Event loop threads for the listeners and tunnels. Default: 1, which measured faster on 2 cores than one a core: every request then stays on one thread from browser to tunnel. (env: HOPGATE_THREADS)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" cert-refresh-interval' -l 'cert-refresh-interval' -d 'Seconds between looks at the store for new, renewed or due certificates (±10% jitter). Default: 30. (env: HOPGATE_CERT_REFRESH_INTERVAL)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" acme-retry-delay' -l 'acme-retry-delay' -d 'Seconds before retrying a failed certificate order; doubles with each failure, up to 6 hours. Default: 60. (env: HOPGATE_ACME_RETRY_DELAY)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" dev' -l 'dev' -d 'Loopback only, self-signed certificate, embedded store, a printed admin key. (env: HOPGATE_DEV)'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" migrate' -l 'migrate' -d 'Apply pending database migrations at start instead of refusing to run. (env: HOPGATE_MIGRATE)'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" version' -l 'version' -d 'Show the version.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate serve" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" database' -l 'database' -d 'Where domains are stored: sqlite:PATH or postgres://USER@HOST:PORT/DB (any libpq URL). Default: sqlite:/var/lib/hopgate/hopgate.db. (env: HOPGATE_DATABASE, HOP_DB_DSN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" database-timeout' -l 'database-timeout' -d 'How long to keep retrying an unreachable database before failing (exit 69). Default: 10. (env: HOPGATE_DATABASE_TIMEOUT)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" log-level' -l 'log-level' -d 'trace, debug, info, notice, warning, error or critical. Default: info. (env: HOPGATE_LOG_LEVEL)' -rfka 'trace debug info notice warning error critical'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" log-format' -l 'log-format' -d 'text or json (one object a line). Default: text. (env: HOPGATE_LOG_FORMAT)' -rfka 'text json'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" server' -l 'server' -d 'The edge: HOST or HOST:PORT (UDP; default port 443). (env: HOPGATE_SERVER, HOP_CLIENT_SERVER_ADDR)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" domain' -l 'domain' -d 'The domain to serve, registered on the edge. (env: HOPGATE_DOMAIN, HOP_CLIENT_DOMAIN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" key' -l 'key' -d 'The domain\'s client API key. (env: HOPGATE_CLIENT_API_KEY, HOP_CLIENT_API_KEY)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" to' -l 'to' -d 'The local service for every path: HOST:PORT or PORT. (env: HOPGATE_TO, HOP_CLIENT_LOCAL_TARGET)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect"' -l 'route' -d 'A local service for one path prefix: /PREFIX=HOST:PORT; repeatable. (env: HOPGATE_ROUTES, comma-separated)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" ca-file' -l 'ca-file' -d 'Trust only the CAs in this PEM file for the edge\'s certificate. (env: HOPGATE_CA_FILE)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" server-fingerprint' -l 'server-fingerprint' -d 'Accept exactly the edge certificate with this SHA-256 fingerprint. (env: HOPGATE_SERVER_FINGERPRINT)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" server-name' -l 'server-name' -d 'The name the edge\'s certificate must carry. Default: the host of --server. (env: HOPGATE_SERVER_NAME)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" insecure' -l 'insecure' -d 'Do not verify the edge\'s certificate at all (anyone on the path can read the tunnel). (env: HOPGATE_INSECURE)'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" version' -l 'version' -d 'Show the version.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate connect" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain" version' -l 'version' -d 'Show the version.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_positional "hopgate domain" -eq 1' -fa 'add' -d 'Register a domain and print its new client API key (shown only this once).'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_positional "hopgate domain" -eq 1' -fa 'rm' -d 'Unregister a domain.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_positional "hopgate domain" -eq 1' -fa 'ls' -d 'List registered domains (never their keys).'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain add" database' -l 'database' -d 'Where domains are stored: sqlite:PATH or postgres://USER@HOST:PORT/DB (any libpq URL). Default: sqlite:/var/lib/hopgate/hopgate.db. (env: HOPGATE_DATABASE, HOP_DB_DSN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain add" database-timeout' -l 'database-timeout' -d 'How long to keep retrying an unreachable database before failing (exit 69). Default: 10. (env: HOPGATE_DATABASE_TIMEOUT)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain add" log-level' -l 'log-level' -d 'trace, debug, info, notice, warning, error or critical. Default: info. (env: HOPGATE_LOG_LEVEL)' -rfka 'trace debug info notice warning error critical'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain add" log-format' -l 'log-format' -d 'text or json (one object a line). Default: text. (env: HOPGATE_LOG_FORMAT)' -rfka 'text json'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain add" server' -l 'server' -d 'Administer the domains of the edge at this URL (https://edge.example.com) through its admin API instead of the store. (env: HOPGATE_ADMIN_SERVER)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain add" admin-key' -l 'admin-key' -d 'The edge\'s admin key, with --server. (env: HOPGATE_ADMIN_KEY)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain add" admin-ca-file' -l 'admin-ca-file' -d 'Trust only the CAs in this PEM file for --server. (env: HOPGATE_ADMIN_CA_FILE)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain add" admin-insecure' -l 'admin-insecure' -d 'Do not verify the certificate of --server (a dev-mode edge). (env: HOPGATE_ADMIN_INSECURE)'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain add" memo' -l 'memo' -d 'A note for operators, shown by `domain ls`.' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain add" json' -l 'json' -d 'Print the new domain and its client_api_key as JSON.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain add" version' -l 'version' -d 'Show the version.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain add" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain rm" database' -l 'database' -d 'Where domains are stored: sqlite:PATH or postgres://USER@HOST:PORT/DB (any libpq URL). Default: sqlite:/var/lib/hopgate/hopgate.db. (env: HOPGATE_DATABASE, HOP_DB_DSN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain rm" database-timeout' -l 'database-timeout' -d 'How long to keep retrying an unreachable database before failing (exit 69). Default: 10. (env: HOPGATE_DATABASE_TIMEOUT)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain rm" log-level' -l 'log-level' -d 'trace, debug, info, notice, warning, error or critical. Default: info. (env: HOPGATE_LOG_LEVEL)' -rfka 'trace debug info notice warning error critical'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain rm" log-format' -l 'log-format' -d 'text or json (one object a line). Default: text. (env: HOPGATE_LOG_FORMAT)' -rfka 'text json'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain rm" server' -l 'server' -d 'Administer the domains of the edge at this URL (https://edge.example.com) through its admin API instead of the store. (env: HOPGATE_ADMIN_SERVER)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain rm" admin-key' -l 'admin-key' -d 'The edge\'s admin key, with --server. (env: HOPGATE_ADMIN_KEY)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain rm" admin-ca-file' -l 'admin-ca-file' -d 'Trust only the CAs in this PEM file for --server. (env: HOPGATE_ADMIN_CA_FILE)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain rm" admin-insecure' -l 'admin-insecure' -d 'Do not verify the certificate of --server (a dev-mode edge). (env: HOPGATE_ADMIN_INSECURE)'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain rm" key' -l 'key' -d 'The domain\'s client API key. (env: HOPGATE_CLIENT_API_KEY)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain rm" force' -l 'force' -d 'Remove the domain without its client API key.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain rm" json' -l 'json' -d 'Print the removed domain as JSON.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain rm" version' -l 'version' -d 'Show the version.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain rm" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain ls" database' -l 'database' -d 'Where domains are stored: sqlite:PATH or postgres://USER@HOST:PORT/DB (any libpq URL). Default: sqlite:/var/lib/hopgate/hopgate.db. (env: HOPGATE_DATABASE, HOP_DB_DSN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain ls" database-timeout' -l 'database-timeout' -d 'How long to keep retrying an unreachable database before failing (exit 69). Default: 10. (env: HOPGATE_DATABASE_TIMEOUT)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain ls" log-level' -l 'log-level' -d 'trace, debug, info, notice, warning, error or critical. Default: info. (env: HOPGATE_LOG_LEVEL)' -rfka 'trace debug info notice warning error critical'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain ls" log-format' -l 'log-format' -d 'text or json (one object a line). Default: text. (env: HOPGATE_LOG_FORMAT)' -rfka 'text json'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain ls" server' -l 'server' -d 'Administer the domains of the edge at this URL (https://edge.example.com) through its admin API instead of the store. (env: HOPGATE_ADMIN_SERVER)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain ls" admin-key' -l 'admin-key' -d 'The edge\'s admin key, with --server. (env: HOPGATE_ADMIN_KEY)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain ls" admin-ca-file' -l 'admin-ca-file' -d 'Trust only the CAs in this PEM file for --server. (env: HOPGATE_ADMIN_CA_FILE)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain ls" admin-insecure' -l 'admin-insecure' -d 'Do not verify the certificate of --server (a dev-mode edge). (env: HOPGATE_ADMIN_INSECURE)'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain ls" json' -l 'json' -d 'Print a JSON array of {id, domain, memo, created_at, updated_at}.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain ls" version' -l 'version' -d 'Show the version.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate domain ls" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert" version' -l 'version' -d 'Show the version.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_positional "hopgate cert" -eq 1' -fa 'ls' -d 'List stored certificates: domain, issuer, expiry, days left.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_positional "hopgate cert" -eq 1' -fa 'renew' -d 'Renew certificates that are due (or --force), through the edge that shares this store.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert ls" database' -l 'database' -d 'Where domains are stored: sqlite:PATH or postgres://USER@HOST:PORT/DB (any libpq URL). Default: sqlite:/var/lib/hopgate/hopgate.db. (env: HOPGATE_DATABASE, HOP_DB_DSN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert ls" database-timeout' -l 'database-timeout' -d 'How long to keep retrying an unreachable database before failing (exit 69). Default: 10. (env: HOPGATE_DATABASE_TIMEOUT)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert ls" log-level' -l 'log-level' -d 'trace, debug, info, notice, warning, error or critical. Default: info. (env: HOPGATE_LOG_LEVEL)' -rfka 'trace debug info notice warning error critical'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert ls" log-format' -l 'log-format' -d 'text or json (one object a line). Default: text. (env: HOPGATE_LOG_FORMAT)' -rfka 'text json'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert ls" json' -l 'json' -d 'Print a JSON array of {domain, issuer, serial, not_before, not_after, days_left}.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert ls" version' -l 'version' -d 'Show the version.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert ls" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" database' -l 'database' -d 'Where domains are stored: sqlite:PATH or postgres://USER@HOST:PORT/DB (any libpq URL). Default: sqlite:/var/lib/hopgate/hopgate.db. (env: HOPGATE_DATABASE, HOP_DB_DSN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" database-timeout' -l 'database-timeout' -d 'How long to keep retrying an unreachable database before failing (exit 69). Default: 10. (env: HOPGATE_DATABASE_TIMEOUT)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" log-level' -l 'log-level' -d 'trace, debug, info, notice, warning, error or critical. Default: info. (env: HOPGATE_LOG_LEVEL)' -rfka 'trace debug info notice warning error critical'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" log-format' -l 'log-format' -d 'text or json (one object a line). Default: text. (env: HOPGATE_LOG_FORMAT)' -rfka 'text json'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" acme-directory' -l 'acme-directory' -d 'The ACME directory URL. Default: Let\'s Encrypt production. (env: HOPGATE_ACME_DIRECTORY)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" acme-staging' -l 'acme-staging' -d 'Use Let\'s Encrypt\'s staging directory (untrusted certificates, generous limits). (env: HOPGATE_ACME_STAGING)'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" acme-email' -l 'acme-email' -d 'The account\'s contact email, for the CA\'s expiry notices. (env: HOPGATE_ACME_EMAIL)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" acme-agree-tos' -l 'acme-agree-tos' -d 'Agree to the CA\'s terms of service (required to get certificates). (env: HOPGATE_ACME_AGREE_TOS)'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" acme-ca-file' -l 'acme-ca-file' -d 'A PEM CA file to trust for the ACME server\'s own HTTPS (a test CA such as Pebble\'s). (env: HOPGATE_ACME_CA_FILE)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" acme-challenge' -l 'acme-challenge' -d 'How to prove control of a name: http-01 (the CA fetches http://NAME/.well-known/acme-challenge/ on port 80) or tls-alpn-01 (the CA connects to port 443). Default: http-01. (env: HOPGATE_ACME_CHALLENGE)' -rfka 'http-01 tls-alpn-01'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" domain' -l 'domain' -d 'Renew only this domain.' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" force' -l 'force' -d 'Renew even when the certificate is not due.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" version' -l 'version' -d 'Show the version.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate cert renew" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate migrate" database' -l 'database' -d 'Where domains are stored: sqlite:PATH or postgres://USER@HOST:PORT/DB (any libpq URL). Default: sqlite:/var/lib/hopgate/hopgate.db. (env: HOPGATE_DATABASE, HOP_DB_DSN)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate migrate" database-timeout' -l 'database-timeout' -d 'How long to keep retrying an unreachable database before failing (exit 69). Default: 10. (env: HOPGATE_DATABASE_TIMEOUT)' -rfka ''
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate migrate" log-level' -l 'log-level' -d 'trace, debug, info, notice, warning, error or critical. Default: info. (env: HOPGATE_LOG_LEVEL)' -rfka 'trace debug info notice warning error critical'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate migrate" log-format' -l 'log-format' -d 'text or json (one object a line). Default: text. (env: HOPGATE_LOG_FORMAT)' -rfka 'text json'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate migrate" status' -l 'status' -d 'List applied and pending migrations instead of applying them.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate migrate" json' -l 'json' -d 'Print JSON.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate migrate" version' -l 'version' -d 'Show the version.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate migrate" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate keygen" hash' -l 'hash' -d 'Also print the key\'s Argon2id encoded hash.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate keygen" json' -l 'json' -d 'Print {"key": ..., "hash": ...} as JSON.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate keygen" version' -l 'version' -d 'Show the version.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate keygen" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'hopgate' -n '__hopgate_should_offer_completions_for_flags_or_options "hopgate help" version' -l 'version' -d 'Show the version.'
