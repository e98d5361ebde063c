# Sourced by env.sh and platform-env.sh. Dumps and archives are encrypted before they leave the
# container: gpg, AES-256 with its integrity check, keyed by this stack's backup_encryption_key
# (a stack output: keep a copy away from this swarm, or the backups cannot be read). Callers have a
# private $work directory (mktemp -d), which serves as gpg's home.
crypt() {  # gpg starts an agent in its home; it is stopped again, whatever gpg's outcome
  status=0
  gpg --homedir "$work" --batch --yes --quiet --pinentry-mode loopback \
    --passphrase-file "${secrets:-/run/secrets}/backup_encryption_key" "$@" || status=$?
  gpgconf --homedir "$work" --kill gpg-agent 2>/dev/null || true
  return "$status"
}
encrypt() {  # encrypt PLAIN ENCRYPTED
  crypt --symmetric --cipher-algo AES256 --output "$2" "$1"
}
decrypt() {  # decrypt ENCRYPTED PLAIN NAME; refuses, with a clear message, what this key did not encrypt
  if ! crypt --decrypt --output "$2" "$1" 2>/dev/null; then
    echo "restore: cannot decrypt $3 with this stack's backup key (backup_encryption_key): a wrong key or a damaged object; nothing was restored" >&2
    exit 1
  fi
}
# fetched ENCRYPTED_OR_PLAIN PLAIN NAME: objects from before encryption (no .gpg) are used as they are.
fetched() {
  case "$3" in
    *.gpg) decrypt "$1" "$2" "$3" ;;
    *) mv "$1" "$2" ;;
  esac
}
