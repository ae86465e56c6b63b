// The JSON engine behind Shoal's Lambda serializers (Mono has no System.Text.Json). Internal: the runtime and
// Amazon.Lambda.Serialization.SystemTextJson reach it through InternalsVisibleTo.
//
// Reading builds a tree (Dictionary<string, object>, List<object>, string, JsonNumber, bool, null) and binds
// it to the target type by reflection: POCOs through public settable properties and public fields (names
// matched case-insensitively; [JsonPropertyName]/[JsonProperty]/[DataMember] names and [JsonIgnore] honoured
// by attribute name), or through the public constructor whose parameters name members; arrays, lists, sets,
// dictionaries; string, bool, every number type, enums (number or name), char, DateTime, DateTimeOffset,
// TimeSpan, Guid, Uri, byte[] and MemoryStream (base64), Nullable<T>; `object` receives the tree itself
// (long/double for numbers). Writing walks the runtime type the same way; null members are left out.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Reflection;
using System.Text;

namespace Amazon.Lambda.Core.Internal
{
    internal sealed class JsonNumber
    {
        internal readonly string Raw;

        internal JsonNumber(string raw)
        {
            Raw = raw;
        }

        internal object Natural()
        {
            long l;
            if (Raw.IndexOfAny(new[] { '.', 'e', 'E' }) < 0 && long.TryParse(Raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out l))
                return l;
            return double.Parse(Raw, NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        public override string ToString()
        {
            return Raw;
        }
    }

    internal sealed class JsonException : Exception
    {
        internal JsonException(string message) : base(message)
        {
        }

        internal JsonException(string message, Exception inner) : base(message, inner)
        {
        }
    }

    internal static class JsonReader
    {
        internal const int MaxDepth = 64;

        internal static object Parse(string text)
        {
            int i = 0;
            SkipWhite(text, ref i);
            if (i >= text.Length)
                throw new JsonException("The input does not contain any JSON tokens. Expected the input to start with a valid JSON token, while isFinalBlock is true. LineNumber: 0 | BytePositionInLine: 0.");
            object value = ReadValue(text, ref i, 0);
            SkipWhite(text, ref i);
            if (i < text.Length)
                throw Error(text, i, "'" + text[i] + "' is invalid after a single JSON value. Expected end of data.");
            return value;
        }

        internal static object Parse(Stream stream)
        {
            var ms = stream as MemoryStream;
            byte[] bytes;
            int offset = 0, count;
            ArraySegment<byte> segment;
            if (ms != null && ms.Position == 0 && ms.TryGetBuffer(out segment))
            {
                bytes = segment.Array;
                offset = segment.Offset;
                count = (int)ms.Length;
            }
            else
            {
                var copy = new MemoryStream();
                stream.CopyTo(copy);
                bytes = copy.GetBuffer();
                count = (int)copy.Length;
            }
            if (count >= 3 && bytes[offset] == 0xEF && bytes[offset + 1] == 0xBB && bytes[offset + 2] == 0xBF)
            {
                offset += 3;
                count -= 3;
            }
            return Parse(Encoding.UTF8.GetString(bytes, offset, count));
        }

        private static JsonException Error(string text, int at, string what)
        {
            int line = 0, col = 0;
            for (int k = 0; k < at && k < text.Length; k++)
            {
                if (text[k] == '\n')
                {
                    line++;
                    col = 0;
                }
                else
                {
                    col++;
                }
            }
            return new JsonException(what + " LineNumber: " + line + " | BytePositionInLine: " + col + ".");
        }

        private static void SkipWhite(string s, ref int i)
        {
            while (i < s.Length)
            {
                char c = s[i];
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
                    i++;
                else
                    break;
            }
        }

        private static object ReadValue(string s, ref int i, int depth)
        {
            if (depth > MaxDepth)
                throw Error(s, i, "The maximum configured depth of " + MaxDepth + " has been exceeded.");
            SkipWhite(s, ref i);
            if (i >= s.Length)
                throw Error(s, i, "Expected a value but reached the end of data.");
            char c = s[i];
            switch (c)
            {
                case '{':
                    return ReadObject(s, ref i, depth);
                case '[':
                    return ReadArray(s, ref i, depth);
                case '"':
                    return ReadString(s, ref i);
                case 't':
                    Expect(s, ref i, "true");
                    return true;
                case 'f':
                    Expect(s, ref i, "false");
                    return false;
                case 'n':
                    Expect(s, ref i, "null");
                    return null;
                default:
                    if (c == '-' || (c >= '0' && c <= '9'))
                        return ReadNumber(s, ref i);
                    throw Error(s, i, "'" + c + "' is an invalid start of a value.");
            }
        }

        private static void Expect(string s, ref int i, string word)
        {
            if (string.CompareOrdinal(s, i, word, 0, word.Length) != 0)
                throw Error(s, i, "'" + s[i] + "' is an invalid start of a value.");
            i += word.Length;
        }

        private static Dictionary<string, object> ReadObject(string s, ref int i, int depth)
        {
            var result = new Dictionary<string, object>(StringComparer.Ordinal);
            i++;
            SkipWhite(s, ref i);
            if (i < s.Length && s[i] == '}')
            {
                i++;
                return result;
            }
            while (true)
            {
                SkipWhite(s, ref i);
                if (i >= s.Length || s[i] != '"')
                    throw Error(s, i, "Expected a property name.");
                string key = ReadString(s, ref i);
                SkipWhite(s, ref i);
                if (i >= s.Length || s[i] != ':')
                    throw Error(s, i, "Expected ':' after a property name.");
                i++;
                result[key] = ReadValue(s, ref i, depth + 1);
                SkipWhite(s, ref i);
                if (i < s.Length && s[i] == ',')
                {
                    i++;
                    continue;
                }
                if (i < s.Length && s[i] == '}')
                {
                    i++;
                    return result;
                }
                throw Error(s, i, "Expected either ',' or '}' after a property value.");
            }
        }

        private static List<object> ReadArray(string s, ref int i, int depth)
        {
            var result = new List<object>();
            i++;
            SkipWhite(s, ref i);
            if (i < s.Length && s[i] == ']')
            {
                i++;
                return result;
            }
            while (true)
            {
                result.Add(ReadValue(s, ref i, depth + 1));
                SkipWhite(s, ref i);
                if (i < s.Length && s[i] == ',')
                {
                    i++;
                    continue;
                }
                if (i < s.Length && s[i] == ']')
                {
                    i++;
                    return result;
                }
                throw Error(s, i, "Expected either ',' or ']' after an array value.");
            }
        }

        private static string ReadString(string s, ref int i)
        {
            i++;
            int start = i;
            while (i < s.Length && s[i] != '"' && s[i] != '\\')
            {
                if (s[i] < ' ')
                    throw Error(s, i, "A control character was found in a string.");
                i++;
            }
            if (i < s.Length && s[i] == '"')
            {
                i++;
                return s.Substring(start, i - start - 1);
            }
            var sb = new StringBuilder(s, start, i - start, i - start + 16);
            while (i < s.Length)
            {
                char c = s[i++];
                if (c == '"')
                    return sb.ToString();
                if (c < ' ')
                    throw Error(s, i - 1, "A control character was found in a string.");
                if (c != '\\')
                {
                    sb.Append(c);
                    continue;
                }
                if (i >= s.Length)
                    break;
                char e = s[i++];
                switch (e)
                {
                    case '"': sb.Append('"'); break;
                    case '\\': sb.Append('\\'); break;
                    case '/': sb.Append('/'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        if (i + 4 > s.Length)
                            throw Error(s, i, "Invalid \\u escape in a string.");
                        int code;
                        if (!int.TryParse(s.Substring(i, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out code))
                            throw Error(s, i, "Invalid \\u escape in a string.");
                        sb.Append((char)code);
                        i += 4;
                        break;
                    default:
                        throw Error(s, i - 1, "'" + e + "' is an invalid escapable character within a JSON string.");
                }
            }
            throw Error(s, i, "Expected end of string, but instead reached end of data.");
        }

        private static JsonNumber ReadNumber(string s, ref int i)
        {
            int start = i;
            if (s[i] == '-')
                i++;
            int digits = i;
            while (i < s.Length && s[i] >= '0' && s[i] <= '9')
                i++;
            if (i == digits)
                throw Error(s, i, "Invalid number.");
            if (i < s.Length && s[i] == '.')
            {
                i++;
                int frac = i;
                while (i < s.Length && s[i] >= '0' && s[i] <= '9')
                    i++;
                if (i == frac)
                    throw Error(s, i, "Invalid number.");
            }
            if (i < s.Length && (s[i] == 'e' || s[i] == 'E'))
            {
                i++;
                if (i < s.Length && (s[i] == '+' || s[i] == '-'))
                    i++;
                int exp = i;
                while (i < s.Length && s[i] >= '0' && s[i] <= '9')
                    i++;
                if (i == exp)
                    throw Error(s, i, "Invalid number.");
            }
            return new JsonNumber(s.Substring(start, i - start));
        }
    }

    /// <summary>Types of System.dll and System.Core.dll, reached by name: an assembly that references them
    /// makes Mono load them (its AOT image checks them) at every start, for functions that never use them.</summary>
    internal static class SystemTypes
    {
        private const string Framework = ", Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089";

        internal static object MakeUri(string text)
        {
            var uri = Type.GetType("System.Uri, System" + Framework, true);
            var kind = Type.GetType("System.UriKind, System" + Framework, true);
            return Activator.CreateInstance(uri, text, Enum.ToObject(kind, 0)); // UriKind.RelativeOrAbsolute
        }

        internal static string UriText(object uri)
        {
            return (string)uri.GetType().GetProperty("OriginalString").GetValue(uri, null);
        }

        internal static object MakeSet(Type item)
        {
            var set = Type.GetType("System.Collections.Generic.HashSet`1, System.Core" + Framework, true);
            return Activator.CreateInstance(set.MakeGenericType(item));
        }
    }

    internal sealed class JsonMember
    {
        internal string Name; // as written
        internal Type Type;
        internal MemberInfo Member;
        internal bool CanRead;
        internal bool CanWrite;

        internal MethodInfo Getter, Setter; // accessors are called as methods: Mono's PropertyInfo.GetValue
                                            // JIT-compiles an adapter per (type, property type) on first use

        internal object Get(object target)
        {
            return Getter != null ? Getter.Invoke(target, null) : ((FieldInfo)Member).GetValue(target);
        }

        internal void Set(object target, object value)
        {
            if (Setter != null)
                Setter.Invoke(target, new[] { value });
            else
                ((FieldInfo)Member).SetValue(target, value);
        }
    }

    internal sealed class JsonTypeInfo
    {
        internal List<JsonMember> Members = new List<JsonMember>();
        internal Dictionary<string, JsonMember> ByName = new Dictionary<string, JsonMember>(StringComparer.OrdinalIgnoreCase);
        internal ConstructorInfo Constructor; // parameterless, or the one to bind by parameter names
        internal ParameterInfo[] Parameters;
    }

    internal sealed class JsonEngine
    {
        internal readonly bool CamelCase;
        internal readonly bool IncludeFields;
        private readonly Dictionary<Type, JsonTypeInfo> _types = new Dictionary<Type, JsonTypeInfo>();

        internal static readonly JsonEngine Default = new JsonEngine(false, true);

        internal JsonEngine(bool camelCase, bool includeFields)
        {
            CamelCase = camelCase;
            IncludeFields = includeFields;
        }

        // ---- reading -------------------------------------------------------------------------------

        internal T Deserialize<T>(Stream stream)
        {
            return (T)Bind(JsonReader.Parse(stream), typeof(T), "$");
        }

        internal object Deserialize(Stream stream, Type type)
        {
            return Bind(JsonReader.Parse(stream), type, "$");
        }

        internal object Deserialize(string text, Type type)
        {
            return Bind(JsonReader.Parse(text), type, "$");
        }

        private static JsonException Mismatch(Type type, string path)
        {
            return new JsonException("The JSON value could not be converted to " + TypeName(type) + ". Path: " + path + ".");
        }

        internal static string TypeName(Type t)
        {
            if (!t.IsGenericType)
                return t.FullName ?? t.Name;
            var sb = new StringBuilder();
            string name = t.GetGenericTypeDefinition().FullName ?? t.Name;
            int tick = name.IndexOf('`');
            sb.Append(tick < 0 ? name : name.Substring(0, tick)).Append('[');
            var args = t.GetGenericArguments();
            for (int k = 0; k < args.Length; k++)
            {
                if (k > 0)
                    sb.Append(',');
                sb.Append(TypeName(args[k]));
            }
            return sb.Append(']').ToString();
        }

        internal static object Natural(object tree)
        {
            var number = tree as JsonNumber;
            if (number != null)
                return number.Natural();
            var dict = tree as Dictionary<string, object>;
            if (dict != null)
            {
                var keys = new List<string>(dict.Keys);
                foreach (var k in keys)
                    dict[k] = Natural(dict[k]);
                return dict;
            }
            var list = tree as List<object>;
            if (list != null)
            {
                for (int k = 0; k < list.Count; k++)
                    list[k] = Natural(list[k]);
                return list;
            }
            return tree;
        }

        internal object Bind(object tree, Type type, string path)
        {
            if (type == typeof(object))
                return Natural(tree);
            if (tree == null)
            {
                if (type.IsValueType && Nullable.GetUnderlyingType(type) == null)
                    throw Mismatch(type, path);
                return null;
            }
            var underlying = Nullable.GetUnderlyingType(type);
            if (underlying != null)
                type = underlying;

            var str = tree as string;
            var num = tree as JsonNumber;
            try
            {
                if (type == typeof(string))
                {
                    if (str == null)
                        throw Mismatch(type, path);
                    return str;
                }
                if (type == typeof(bool))
                {
                    if (!(tree is bool))
                        throw Mismatch(type, path);
                    return tree;
                }
                if (type.IsEnum)
                {
                    if (num != null)
                        return Enum.ToObject(type, Convert.ChangeType(num.Raw, Enum.GetUnderlyingType(type), CultureInfo.InvariantCulture));
                    if (str != null)
                        return Enum.Parse(type, str, true);
                    throw Mismatch(type, path);
                }
                if (type.IsPrimitive || type == typeof(decimal))
                {
                    if (type == typeof(char))
                    {
                        if (str == null || str.Length != 1)
                            throw Mismatch(type, path);
                        return str[0];
                    }
                    if (num == null)
                        throw Mismatch(type, path);
                    return ParseNumber(num.Raw, type);
                }
                if (type == typeof(DateTime))
                {
                    if (num != null) // seconds since the epoch, as AWS's DateTimeConverter reads them
                        return new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddSeconds(double.Parse(num.Raw, NumberStyles.Float, CultureInfo.InvariantCulture));
                    if (str == null)
                        throw Mismatch(type, path);
                    return DateTime.Parse(str, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
                }
                if (type == typeof(DateTimeOffset))
                {
                    if (str == null)
                        throw Mismatch(type, path);
                    return DateTimeOffset.Parse(str, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
                }
                if (type == typeof(TimeSpan))
                {
                    if (str == null)
                        throw Mismatch(type, path);
                    return TimeSpan.Parse(str, CultureInfo.InvariantCulture);
                }
                if (type == typeof(Guid))
                {
                    if (str == null)
                        throw Mismatch(type, path);
                    return Guid.Parse(str);
                }
                if (type.FullName == "System.Uri")
                {
                    if (str == null)
                        throw Mismatch(type, path);
                    return SystemTypes.MakeUri(str);
                }
                if (type == typeof(byte[]))
                {
                    if (str == null)
                        throw Mismatch(type, path);
                    return Convert.FromBase64String(str);
                }
                if (type == typeof(MemoryStream) || type == typeof(Stream))
                {
                    if (str == null)
                        throw Mismatch(type, path);
                    return new MemoryStream(Convert.FromBase64String(str));
                }
            }
            catch (JsonException)
            {
                throw;
            }
            catch (Exception e)
            {
                throw new JsonException("The JSON value could not be converted to " + TypeName(type) + ". Path: " + path + ".", e);
            }

            var list = tree as List<object>;
            var dict = tree as Dictionary<string, object>;
            if (type.IsArray)
            {
                if (list == null)
                    throw Mismatch(type, path);
                var element = type.GetElementType();
                var array = Array.CreateInstance(element, list.Count);
                for (int k = 0; k < list.Count; k++)
                    array.SetValue(Bind(list[k], element, path + "[" + k + "]"), k);
                return array;
            }
            Type keyType, valueType;
            if (DictionaryTypes(type, out keyType, out valueType))
            {
                if (dict == null)
                    throw Mismatch(type, path);
                IDictionary target;
                if (type.IsInterface || type.IsAbstract)
                    target = (IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(keyType, valueType));
                else
                    target = (IDictionary)Activator.CreateInstance(type);
                foreach (var pair in dict)
                {
                    object key = keyType == typeof(string) ? pair.Key : BindKey(pair.Key, keyType, path);
                    target[key] = Bind(pair.Value, valueType, path + "." + pair.Key);
                }
                return target;
            }
            Type itemType = CollectionItemType(type);
            if (itemType != null)
            {
                if (list == null)
                    throw Mismatch(type, path);
                object target;
                if (type.IsInterface || type.IsAbstract)
                {
                    var def = type.IsGenericType ? type.GetGenericTypeDefinition() : null;
                    target = def != null && def.FullName == "System.Collections.Generic.ISet`1"
                        ? SystemTypes.MakeSet(itemType)
                        : Activator.CreateInstance(typeof(List<>).MakeGenericType(itemType));
                }
                else
                {
                    target = Activator.CreateInstance(type);
                }
                var add = target.GetType().GetMethod("Add", new[] { itemType });
                var plain = target as IList;
                var one = new object[1];
                for (int k = 0; k < list.Count; k++)
                {
                    var item = Bind(list[k], itemType, path + "[" + k + "]");
                    if (plain != null)
                    {
                        plain.Add(item);
                    }
                    else
                    {
                        one[0] = item;
                        add.Invoke(target, one);
                    }
                }
                return target;
            }
            if (type == typeof(IEnumerable) || type == typeof(IList) || type == typeof(ICollection))
            {
                if (list == null)
                    throw Mismatch(type, path);
                return Natural(list);
            }
            if (type == typeof(IDictionary))
            {
                if (dict == null)
                    throw Mismatch(type, path);
                return Natural(dict);
            }
            if (dict == null || type.IsPrimitive || type == typeof(string) || type.IsInterface || type.IsAbstract)
                throw Mismatch(type, path);
            return BindObject(dict, type, path);
        }

        private object BindKey(string key, Type keyType, string path)
        {
            if (keyType.IsEnum)
                return Enum.Parse(keyType, key, true);
            if (keyType.IsPrimitive || keyType == typeof(decimal))
                return ParseNumber(key, keyType);
            if (keyType == typeof(Guid))
                return Guid.Parse(key);
            if (keyType == typeof(object))
                return key;
            throw new JsonException("The dictionary key type " + TypeName(keyType) + " is not supported. Path: " + path + ".");
        }

        private static object ParseNumber(string raw, Type type)
        {
            var inv = CultureInfo.InvariantCulture;
            if (type == typeof(int)) return int.Parse(raw, NumberStyles.Integer, inv);
            if (type == typeof(long)) return long.Parse(raw, NumberStyles.Integer, inv);
            if (type == typeof(double)) return double.Parse(raw, NumberStyles.Float, inv);
            if (type == typeof(decimal)) return decimal.Parse(raw, NumberStyles.Float, inv);
            if (type == typeof(float)) return float.Parse(raw, NumberStyles.Float, inv);
            if (type == typeof(short)) return short.Parse(raw, NumberStyles.Integer, inv);
            if (type == typeof(byte)) return byte.Parse(raw, NumberStyles.Integer, inv);
            if (type == typeof(sbyte)) return sbyte.Parse(raw, NumberStyles.Integer, inv);
            if (type == typeof(uint)) return uint.Parse(raw, NumberStyles.Integer, inv);
            if (type == typeof(ulong)) return ulong.Parse(raw, NumberStyles.Integer, inv);
            if (type == typeof(ushort)) return ushort.Parse(raw, NumberStyles.Integer, inv);
            throw new FormatException("unsupported number type " + type);
        }

        private object BindObject(Dictionary<string, object> dict, Type type, string path)
        {
            var info = TypeInfoOf(type);
            object target;
            Dictionary<string, bool> used = null; // members already set through the constructor
            if (info.Parameters != null && info.Parameters.Length > 0)
            {
                used = new Dictionary<string, bool>(StringComparer.OrdinalIgnoreCase);
                var args = new object[info.Parameters.Length];
                for (int k = 0; k < args.Length; k++)
                {
                    var p = info.Parameters[k];
                    object value;
                    if (TryGet(dict, p.Name, out value))
                    {
                        args[k] = Bind(value, p.ParameterType, path + "." + p.Name);
                        used[p.Name] = true;
                    }
                    else if (p.HasDefaultValue)
                    {
                        args[k] = p.DefaultValue;
                    }
                    else
                    {
                        args[k] = p.ParameterType.IsValueType ? Activator.CreateInstance(p.ParameterType) : null;
                    }
                }
                target = info.Constructor.Invoke(args);
            }
            else if (info.Constructor != null)
            {
                target = info.Constructor.Invoke(null);
            }
            else if (type.IsValueType)
            {
                target = Activator.CreateInstance(type);
            }
            else
            {
                throw new JsonException("Deserialization of types without a parameterless constructor is not supported. Type '" + TypeName(type) + "'. Path: " + path + ".");
            }
            foreach (var pair in dict)
            {
                JsonMember member;
                if (!info.ByName.TryGetValue(pair.Key, out member) || !member.CanWrite)
                    continue;
                if (used != null && used.ContainsKey(member.Member.Name))
                    continue;
                member.Set(target, Bind(pair.Value, member.Type, path + "." + pair.Key));
            }
            return target;
        }

        private static bool TryGet(Dictionary<string, object> dict, string name, out object value)
        {
            if (dict.TryGetValue(name, out value))
                return true;
            foreach (var pair in dict)
            {
                if (string.Equals(pair.Key, name, StringComparison.OrdinalIgnoreCase))
                {
                    value = pair.Value;
                    return true;
                }
            }
            return false;
        }

        internal static bool DictionaryTypes(Type type, out Type key, out Type value)
        {
            key = value = null;
            foreach (var t in SelfAndInterfaces(type))
            {
                if (!t.IsGenericType)
                    continue;
                var def = t.GetGenericTypeDefinition();
                if (def == typeof(IDictionary<,>) || def == typeof(IReadOnlyDictionary<,>) || def == typeof(Dictionary<,>))
                {
                    var args = t.GetGenericArguments();
                    key = args[0];
                    value = args[1];
                    if (type.IsInterface || type.IsAbstract)
                        return def == typeof(IDictionary<,>) || def == typeof(IReadOnlyDictionary<,>) || t == type;
                    return typeof(IDictionary).IsAssignableFrom(type);
                }
            }
            return false;
        }

        private static Type CollectionItemType(Type type)
        {
            if (type == typeof(string))
                return null;
            foreach (var t in SelfAndInterfaces(type))
            {
                if (!t.IsGenericType)
                    continue;
                var def = t.GetGenericTypeDefinition();
                if (type.IsInterface)
                {
                    if (t == type && (def == typeof(IEnumerable<>) || def == typeof(ICollection<>) || def == typeof(IList<>)
                        || def == typeof(IReadOnlyList<>) || def == typeof(IReadOnlyCollection<>) || def.FullName == "System.Collections.Generic.ISet`1"))
                        return t.GetGenericArguments()[0];
                }
                else if (def == typeof(ICollection<>))
                {
                    return type.GetConstructor(Type.EmptyTypes) != null ? t.GetGenericArguments()[0] : null;
                }
            }
            return null;
        }

        private static IEnumerable<Type> SelfAndInterfaces(Type type)
        {
            yield return type;
            foreach (var t in type.GetInterfaces())
                yield return t;
        }

        // ---- members -------------------------------------------------------------------------------

        private static object Attribute(MemberInfo member, string typeName)
        {
            object[] attrs;
            try
            {
                attrs = member.GetCustomAttributes(true);
            }
            catch (Exception)
            {
                return null; // an attribute whose assembly is missing
            }
            foreach (var a in attrs)
            {
                if (a.GetType().Name == typeName)
                    return a;
            }
            return null;
        }

        private static string AttributeString(object attribute, string property)
        {
            if (attribute == null)
                return null;
            var p = attribute.GetType().GetProperty(property);
            return p == null ? null : p.GetValue(attribute, null) as string;
        }

        private static bool Ignored(MemberInfo member)
        {
            var ignore = Attribute(member, "JsonIgnoreAttribute");
            if (ignore == null)
                return Attribute(member, "IgnoreDataMemberAttribute") != null;
            var condition = ignore.GetType().GetProperty("Condition");
            if (condition == null)
                return true;
            var value = condition.GetValue(ignore, null);
            return value == null || value.ToString() == "Always";
        }

        private string MemberName(MemberInfo member)
        {
            var name = AttributeString(Attribute(member, "JsonPropertyNameAttribute"), "Name")
                ?? AttributeString(Attribute(member, "JsonPropertyAttribute"), "PropertyName")
                ?? AttributeString(Attribute(member, "DataMemberAttribute"), "Name");
            if (name != null)
                return name;
            name = member.Name;
            if (name == "XAmzId2")
                return "x-amz-id-2"; // AWS's naming policy maps these two S3 event names
            if (name == "XAmzRequestId")
                return "x-amz-request-id";
            if (CamelCase && name.Length > 0 && char.IsUpper(name[0]))
                name = char.ToLowerInvariant(name[0]) + name.Substring(1);
            return name;
        }

        internal JsonTypeInfo TypeInfoOf(Type type)
        {
            lock (_types)
            {
                JsonTypeInfo info;
                if (_types.TryGetValue(type, out info))
                    return info;
                info = new JsonTypeInfo();
                foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
                {
                    if (p.GetIndexParameters().Length > 0 || Ignored(p))
                        continue;
                    var getter = p.GetGetMethod();
                    var setter = p.GetSetMethod();
                    if (getter == null && setter == null)
                        continue;
                    Add(info, new JsonMember { Name = MemberName(p), Type = p.PropertyType, Member = p, CanRead = getter != null, CanWrite = setter != null, Getter = getter, Setter = setter });
                }
                if (IncludeFields)
                {
                    foreach (var f in type.GetFields(BindingFlags.Public | BindingFlags.Instance))
                    {
                        if (Ignored(f))
                            continue;
                        Add(info, new JsonMember { Name = MemberName(f), Type = f.FieldType, Member = f, CanRead = true, CanWrite = !f.IsInitOnly });
                    }
                }
                var parameterless = type.GetConstructor(Type.EmptyTypes);
                if (parameterless != null)
                {
                    info.Constructor = parameterless;
                }
                else if (!type.IsValueType)
                {
                    ConstructorInfo best = null;
                    foreach (var c in type.GetConstructors())
                    {
                        if (best == null || c.GetParameters().Length > best.GetParameters().Length)
                            best = c;
                    }
                    if (best != null)
                    {
                        info.Constructor = best;
                        info.Parameters = best.GetParameters();
                    }
                }
                _types[type] = info;
                return info;
            }
        }

        private static void Add(JsonTypeInfo info, JsonMember member)
        {
            if (info.ByName.ContainsKey(member.Name))
                return; // a member hidden with `new`: the most derived one came first
            info.Members.Add(member);
            info.ByName[member.Name] = member;
        }

        // ---- writing -------------------------------------------------------------------------------

        internal void Serialize(object value, Stream stream)
        {
            var bytes = new UTF8Encoding(false).GetBytes(Serialize(value));
            stream.Write(bytes, 0, bytes.Length);
        }

        internal string Serialize(object value)
        {
            var sb = new StringBuilder(256);
            Write(sb, value, 0);
            return sb.ToString();
        }

        internal static void WriteString(StringBuilder sb, string s)
        {
            sb.Append('"');
            int start = 0;
            for (int k = 0; k < s.Length; k++)
            {
                char c = s[k];
                string escape;
                switch (c)
                {
                    case '"': escape = "\\\""; break;
                    case '\\': escape = "\\\\"; break;
                    case '\n': escape = "\\n"; break;
                    case '\r': escape = "\\r"; break;
                    case '\t': escape = "\\t"; break;
                    case '\b': escape = "\\b"; break;
                    case '\f': escape = "\\f"; break;
                    default:
                        if (c < ' ' || c == '\u2028' || c == '\u2029' || (char.IsSurrogate(c) && !ValidSurrogate(s, k)))
                            escape = "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture);
                        else
                            continue;
                        break;
                }
                sb.Append(s, start, k - start).Append(escape);
                start = k + 1;
            }
            sb.Append(s, start, s.Length - start).Append('"');
        }

        private static bool ValidSurrogate(string s, int k)
        {
            if (char.IsHighSurrogate(s[k]))
                return k + 1 < s.Length && char.IsLowSurrogate(s[k + 1]);
            return k > 0 && char.IsHighSurrogate(s[k - 1]);
        }

        private void Write(StringBuilder sb, object value, int depth)
        {
            if (depth > JsonReader.MaxDepth)
                throw new JsonException("A possible object cycle was detected. This can either be due to a cycle or if the object depth is larger than the maximum allowed depth of " + JsonReader.MaxDepth + ".");
            if (value == null)
            {
                sb.Append("null");
                return;
            }
            var inv = CultureInfo.InvariantCulture;
            var s = value as string;
            if (s != null)
            {
                WriteString(sb, s);
                return;
            }
            var type = value.GetType();
            if (type == typeof(bool))
            {
                sb.Append((bool)value ? "true" : "false");
                return;
            }
            if (type.IsEnum)
            {
                sb.Append(Convert.ToString(Convert.ChangeType(value, Enum.GetUnderlyingType(type), inv), inv));
                return;
            }
            if (type == typeof(double) || type == typeof(float))
            {
                double d = Convert.ToDouble(value, inv);
                if (double.IsNaN(d) || double.IsInfinity(d))
                    throw new ArgumentException(".NET number values such as positive and negative infinity cannot be written as valid JSON.");
                sb.Append(type == typeof(float) ? ((float)value).ToString("R", inv) : d.ToString("R", inv));
                return;
            }
            if (type.IsPrimitive || type == typeof(decimal))
            {
                if (type == typeof(char))
                    WriteString(sb, value.ToString());
                else
                    sb.Append(Convert.ToString(value, inv));
                return;
            }
            var number = value as JsonNumber;
            if (number != null)
            {
                sb.Append(number.Raw);
                return;
            }
            if (type == typeof(DateTime))
            {
                WriteString(sb, ((DateTime)value).ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK", inv));
                return;
            }
            if (type == typeof(DateTimeOffset))
            {
                WriteString(sb, ((DateTimeOffset)value).ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFFzzz", inv));
                return;
            }
            if (type == typeof(TimeSpan))
            {
                WriteString(sb, ((TimeSpan)value).ToString("c", inv));
                return;
            }
            if (type == typeof(Guid))
            {
                WriteString(sb, value.ToString());
                return;
            }
            if (type.FullName == "System.Uri")
            {
                WriteString(sb, SystemTypes.UriText(value));
                return;
            }
            var bytes = value as byte[];
            if (bytes != null)
            {
                WriteString(sb, Convert.ToBase64String(bytes));
                return;
            }
            var memory = value as MemoryStream;
            if (memory != null)
            {
                WriteString(sb, Convert.ToBase64String(memory.ToArray()));
                return;
            }
            var dict = value as IDictionary;
            if (dict != null)
            {
                sb.Append('{');
                bool first = true;
                foreach (DictionaryEntry entry in dict)
                {
                    if (!first)
                        sb.Append(',');
                    first = false;
                    WriteString(sb, Convert.ToString(entry.Key, inv));
                    sb.Append(':');
                    Write(sb, entry.Value, depth + 1);
                }
                sb.Append('}');
                return;
            }
            Type keyType, valueType;
            if (DictionaryTypes(type, out keyType, out valueType))
            {
                // a generic dictionary that is not an IDictionary: enumerate KeyValuePair<,>
                sb.Append('{');
                bool first = true;
                PropertyInfo keyProp = null, valueProp = null;
                foreach (var entry in (IEnumerable)value)
                {
                    if (keyProp == null)
                    {
                        keyProp = entry.GetType().GetProperty("Key");
                        valueProp = entry.GetType().GetProperty("Value");
                    }
                    if (!first)
                        sb.Append(',');
                    first = false;
                    WriteString(sb, Convert.ToString(keyProp.GetValue(entry, null), inv));
                    sb.Append(':');
                    Write(sb, valueProp.GetValue(entry, null), depth + 1);
                }
                sb.Append('}');
                return;
            }
            var items = value as IEnumerable;
            if (items != null)
            {
                sb.Append('[');
                bool first = true;
                foreach (var item in items)
                {
                    if (!first)
                        sb.Append(',');
                    first = false;
                    Write(sb, item, depth + 1);
                }
                sb.Append(']');
                return;
            }
            if (value is Stream || value is Delegate || value is Type || value is MemberInfo)
                throw new NotSupportedException("Serialization and deserialization of '" + type.FullName + "' instances is not supported.");
            var info = TypeInfoOf(type);
            sb.Append('{');
            bool firstMember = true;
            foreach (var member in info.Members)
            {
                if (!member.CanRead)
                    continue;
                var memberValue = member.Get(value);
                if (memberValue == null)
                    continue;
                if (!firstMember)
                    sb.Append(',');
                firstMember = false;
                WriteString(sb, member.Name);
                sb.Append(':');
                Write(sb, memberValue, depth + 1);
            }
            sb.Append('}');
        }
    }
}
