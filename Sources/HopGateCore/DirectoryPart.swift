/// The directory part of a file path, as `dirname` gives it but empty for a bare file name: "/a/b" -> "/a",
/// "a/b/" -> "a", "b" -> "", "/b" -> "/".
public func directoryPart(of path: String) -> String {
    var path = Substring(path)
    while path.count > 1, path.last == "/" { path.removeLast() }
    guard let slash = path.lastIndex(of: "/") else { return "" }
    var directory = path[..<slash]
    while directory.count > 1, directory.last == "/" { directory.removeLast() }
    return directory.isEmpty ? "/" : String(directory)
}
